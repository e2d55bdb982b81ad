package dev.starling.snapshot;

import dev.starling.estargz.Processes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Debian's containerd for tests: its own root, state and socket under a directory, with the
 * daemon's snapshotter as the proxy plugin {@code starling}; {@code ctr} and {@code ctr-remote}
 * (package stargz-snapshotter) talk to it. Closing stops it and removes what it left mounted.
 */
final class Containerd implements AutoCloseable {
    private final Path dir;
    private final Path socket;
    private final Process process;

    private Containerd(Path dir, Path socket, Process process) {
        this.dir = dir;
        this.socket = socket;
        this.process = process;
    }

    static Containerd start(Path dir, Path snapshotterSocket) throws IOException, InterruptedException {
        return start(dir, snapshotterSocket, "", "");
    }

    /**
     * Starts containerd; {@code criKeys} go into the CRI plugin's table ({@code sandbox_image = ...}),
     * {@code extraTables} after it ({@code [plugins."io.containerd.grpc.v1.cri".registry.mirrors...]}).
     */
    static Containerd start(Path dir, Path snapshotterSocket, String criKeys, String extraTables)
            throws IOException, InterruptedException {
        Files.createDirectories(dir);
        Path socket = dir.resolve("containerd.sock");
        Files.writeString(dir.resolve("config.toml"), """
                version = 2
                root = "%s"
                state = "%s"
                [grpc]
                  address = "%s"
                [proxy_plugins]
                  [proxy_plugins.starling]
                    type = "snapshot"
                    address = "%s"
                [plugins."io.containerd.grpc.v1.cri"]
                %s
                [plugins."io.containerd.grpc.v1.cri".containerd]
                  snapshotter = "starling"
                  disable_snapshot_annotations = false
                """.formatted(dir.resolve("root"), dir.resolve("state"), socket, snapshotterSocket, criKeys) + extraTables);
        Process p;
        try {
            p = new ProcessBuilder("containerd", "--config", dir.resolve("config.toml").toString()).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("containerd.log").toFile()).start();
        } catch (IOException e) {
            throw new IOException("containerd is not installed (bin/install-deps installs it): " + e.getMessage(), e);
        }
        Containerd c = new Containerd(dir, socket, p);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline && p.isAlive()) {
            if (Files.exists(socket) && c.run("ctr", "version").exitCode() == 0) {
                return c;
            }
            Thread.sleep(200);
        }
        c.close();
        throw new IOException("containerd did not start: " + Files.readString(dir.resolve("containerd.log")));
    }

    Path socket() {
        return socket;
    }

    /** Runs {@code ctr} or {@code ctr-remote} against this containerd, up to two minutes. */
    Processes.Result run(String tool, String... args) throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>(List.of(tool, "-a", socket.toString()));
        argv.addAll(List.of(args));
        return Processes.runForResult(dir, argv.toArray(String[]::new));
    }

    String ok(String tool, String... args) throws IOException, InterruptedException {
        Processes.Result r = run(tool, args);
        if (r.exitCode() != 0) {
            throw new IOException(tool + " " + String.join(" ", args) + " exited " + r.exitCode() + ": " + r.stdout()
                    + "\ncontainerd's log:\n" + log());
        }
        return r.stdout();
    }

    String log() {
        try {
            return Files.readString(dir.resolve("containerd.log"));
        } catch (IOException e) {
            return "(no log)";
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
        // containerd keeps its own overlay mounts of image content under its root; detach them
        List<String> mounted = Files.readAllLines(Path.of("/proc/self/mounts")).stream()
                .map(l -> l.split(" ")[1]).filter(m -> m.startsWith(dir.toString())).toList();
        for (String m : mounted.reversed()) {
            new ProcessBuilder("umount", "-l", m).redirectErrorStream(true).start().waitFor(10, TimeUnit.SECONDS);
        }
    }
}
