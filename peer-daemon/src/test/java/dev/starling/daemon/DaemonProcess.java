package dev.starling.daemon;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starling.cli.StarlingCli;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real `starling daemon` process for tests: its own root, control socket and log under a
 * directory, the JVM flags bin/starling gives it, started and waited for until its socket answers.
 * Closing stops it with SIGTERM, as an operator would (it unmounts), and kills it after 30 s.
 */
public final class DaemonProcess implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Process process;
    private final Path root;
    private final Path socket;
    private final Path log;

    private DaemonProcess(Process process, Path root, Path socket, Path log) {
        this.process = process;
        this.root = root;
        this.socket = socket;
        this.log = log;
    }

    /** The JVM that runs the tests, with the daemon's flags, running the CLI on the test class path. */
    public static List<String> starlingCommand() {
        return new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED", "--add-opens=java.base/java.util=ALL-UNNAMED",
                "--add-opens=java.base/java.lang=ALL-UNNAMED", "--add-opens=java.base/java.nio=ALL-UNNAMED",
                "-Xmx512m", "-cp", System.getProperty("java.class.path"), StarlingCli.class.getName()));
    }

    /** Starts a daemon named {@code name} under {@code dir} ({@code dir/name} its root), with {@code options} added. */
    public static DaemonProcess start(Path dir, String name, List<String> options) throws IOException {
        return start(dir, name, options, java.util.Map.of());
    }

    /** As {@link #start(Path, String, List)}, with {@code env} added to the daemon's environment. */
    public static DaemonProcess start(Path dir, String name, List<String> options, java.util.Map<String, String> env)
            throws IOException {
        Path root = dir.resolve(name);
        Path socket = dir.resolve(name + ".sock");
        Path log = dir.resolve(name + ".log");
        List<String> argv = starlingCommand();
        argv.addAll(List.of("daemon", "--root", root.toString(), "--socket", socket.toString()));
        if (!options.contains("--containerd-socket")) { // never the node's own: tests run daemons side by side
            argv.add("--no-containerd");
        }
        if (!options.contains("--warmup")) { // a second or two of CPU per daemon, on two cores shared by the suite (WarmupTest covers it)
            argv.add("--no-warmup");
        }
        argv.addAll(options);
        ProcessBuilder builder = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(log.toFile());
        builder.environment().putAll(env);
        Process p = builder.start();
        return new DaemonProcess(p, root, socket, log);
    }

    /**
     * Starts {@code nodes} daemons on loopback ({@code node0}, {@code node1}, ...), each joining all,
     * with {@code options} added, and waits until each is ready and sees every member. The caller
     * adds them to {@code started} as they start, so it closes them whatever fails.
     */
    public static void startCluster(Path dir, int nodes, List<String> options, List<DaemonProcess> started)
            throws IOException, InterruptedException {
        List<String> addresses = new java.util.ArrayList<>();
        for (int i = 0; i < nodes; i++) {
            addresses.add("127.0.0.1:" + DaemonConfig.freePortPair());
        }
        for (int i = 0; i < nodes; i++) {
            List<String> argv = new java.util.ArrayList<>(List.of("--peer-listen", addresses.get(i), "--join",
                    String.join(",", addresses)));
            argv.addAll(options);
            started.add(start(dir, "node" + i, argv));
        }
        for (DaemonProcess d : started) {
            d.awaitReady();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (d.status().path("members").size() < nodes && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            if (d.status().path("members").size() < nodes) {
                throw new IllegalStateException(d.root() + " sees " + d.status().path("members") + ", not " + nodes
                        + " members:\n" + d.log());
            }
        }
    }

    /** Waits up to a minute for the control socket to answer. */
    public DaemonProcess awaitReady() throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!ControlSocket.answers(socket) && process.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        if (!ControlSocket.answers(socket)) {
            throw new IOException("the daemon did not come up: " + log());
        }
        return this;
    }

    public Path root() {
        return root;
    }

    public Path socket() {
        return socket;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** What `starling status --json` shows. */
    public JsonNode status() throws IOException {
        return ControlSocket.call(socket, JSON.createObjectNode().put("op", "status"));
    }

    public String log() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** Waits up to {@code seconds} for the daemon to exit (one that refused to start); its exit status. */
    public int awaitExit(int seconds) throws InterruptedException, IOException {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            throw new IOException("the daemon did not exit within " + seconds + " s: " + log());
        }
        return process.exitValue();
    }

    /** kill -9: what a crash or an OOM kill does; its mounts stay behind, dead. */
    public void kill() throws InterruptedException {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
