package dev.starling.store;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Debian's podman with every file of its own under one directory: storage (graph and run roots)
 * naming an Additional Layer Store, runc (crun rejects this machine's cgroup layout), pinned
 * ulimits (there is no CAP_SYS_RESOURCE here), no network, an insecure local registry.
 */
final class Podman implements AutoCloseable {
    record Result(int exit, String output) {
    }

    private final Path dir;
    /**
     * The run root and temporary files: with a run root path over ~45 characters every `podman run`
     * here waits 20 s for conmon's timeout (its sockets' paths grow too long), so they live in a
     * short directory of their own under /tmp, removed on close.
     */
    private final Path shortDir;

    /** @param store the Additional Layer Store's mount point, or null for none */
    Podman(Path dir, Path store, String insecureRegistry) throws IOException {
        this.dir = Files.createDirectories(dir);
        this.shortDir = Files.createTempDirectory(Path.of("/tmp"), "pm");
        Files.writeString(dir.resolve("storage.conf"), """
                [storage]
                driver = "overlay"
                runroot = "%s"
                graphroot = "%s"
                [storage.options]
                %s
                """.formatted(shortDir.resolve("run"), graphRoot(),
                store == null ? "" : "additionallayerstores = [\"" + store + ":ref\"]"));
        Files.writeString(dir.resolve("containers.conf"), """
                [containers]
                default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
                netns = "none"
                [engine]
                runtime = "runc"
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                events_logfile_path = "%s"
                tmp_dir = "%s"
                static_dir = "%s"
                volume_path = "%s"
                """.formatted(dir.resolve("events.log"), shortDir.resolve("tmp"), graphRoot().resolve("libpod"),
                graphRoot().resolve("volumes")));
        Files.writeString(dir.resolve("registries.conf"), """
                [[registry]]
                location = "%s"
                insecure = true
                """.formatted(insecureRegistry));
    }

    Path graphRoot() {
        return dir.resolve("graph");
    }

    /** Runs {@code podman args…}, up to two minutes. */
    Result run(String... args) throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>(List.of("podman"));
        argv.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
        pb.environment().put("CONTAINERS_STORAGE_CONF", dir.resolve("storage.conf").toString());
        pb.environment().put("CONTAINERS_CONF", dir.resolve("containers.conf").toString());
        pb.environment().put("CONTAINERS_REGISTRIES_CONF", dir.resolve("registries.conf").toString());
        pb.environment().put("TMPDIR", Files.createDirectories(shortDir.resolve("tmp")).toString());
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new IOException("podman is not installed (bin/install-deps installs podman and runc): " + e.getMessage(), e);
        }
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("podman " + String.join(" ", args) + " did not finish in two minutes");
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    @Override
    public void close() throws IOException {
        try (var walk = Files.walk(shortDir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Runs podman and fails unless it succeeds; returns what it printed. */
    String ok(String... args) throws IOException, InterruptedException {
        Result r = run(args);
        if (r.exit() != 0) {
            throw new IOException("podman " + String.join(" ", args) + " exited " + r.exit() + ": " + r.output());
        }
        return r.output();
    }
}
