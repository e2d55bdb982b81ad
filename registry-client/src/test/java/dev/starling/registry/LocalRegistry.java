package dev.starling.registry;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real registry for tests: Debian's {@code docker-registry} (CNCF distribution) on a free loopback
 * port, with its own storage and config, stopped and removed on close.
 */
public final class LocalRegistry implements AutoCloseable {
    public enum Auth { NONE, HTPASSWD, TOKEN }

    public static final String USER = "starling";
    public static final String PASSWORD = "s3cret-pass";

    private final Process process;
    private final Path dir;
    private final int port;
    private final TokenServer tokens;

    private LocalRegistry(Process process, Path dir, int port, TokenServer tokens) {
        this.process = process;
        this.dir = dir;
        this.port = port;
        this.tokens = tokens;
    }

    /** Tokens the token server issued (TOKEN mode). */
    public int tokensIssued() {
        return tokens.tokensIssued.get();
    }

    public static LocalRegistry start(Auth auth) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("starling-registry-");
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        StringBuilder config = new StringBuilder("""
                version: 0.1
                log:
                  level: info
                  formatter: json
                storage:
                  filesystem:
                    rootdirectory: %s
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:%d
                """.formatted(dir.resolve("storage"), port));
        if (auth == Auth.HTPASSWD) {
            String line = run("htpasswd", "-Bbn", USER, PASSWORD).strip();
            Files.writeString(dir.resolve("htpasswd"), line + "\n");
            config.append("""
                    auth:
                      htpasswd:
                        realm: starling-test
                        path: %s
                    """.formatted(dir.resolve("htpasswd")));
        }
        TokenServer tokens = null;
        if (auth == Auth.TOKEN) {
            try {
                tokens = new TokenServer(dir);
            } catch (Exception e) {
                throw new IOException("cannot start the test token server: " + e, e);
            }
            config.append("""
                    auth:
                      token:
                        realm: %s
                        service: %s
                        issuer: %s
                        rootcertbundle: %s
                    """.formatted(tokens.realm(), TokenServer.SERVICE, TokenServer.ISSUER, tokens.certificatePem));
        }
        Files.writeString(dir.resolve("config.yml"), config);
        Process p;
        try {
            p = new ProcessBuilder("docker-registry", "serve", dir.resolve("config.yml").toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("registry.log").toFile()).start();
        } catch (IOException e) {
            throw new IOException("docker-registry is not installed: run bin/install-deps (" + e.getMessage() + ")", e);
        }
        LocalRegistry registry = new LocalRegistry(p, dir, port, tokens);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IOException("docker-registry exited: " + Files.readString(dir.resolve("registry.log")));
            }
            try {
                HttpURLConnection c = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + "/v2/").toURL()
                        .openConnection();
                c.setConnectTimeout(200);
                int code = c.getResponseCode();
                if (code == 200 || code == 401) {
                    return registry;
                }
            } catch (IOException notYet) {
                Thread.sleep(50);
            }
        }
        registry.close();
        throw new IOException("docker-registry did not start on port " + port);
    }

    /** {@code 127.0.0.1:PORT}, the registry part of image references. */
    public String host() {
        return "127.0.0.1:" + port;
    }

    public ImageReference ref(String repositoryAndTag) {
        return ImageReference.parse(host() + "/" + repositoryAndTag);
    }

    public String log() throws IOException {
        return Files.readString(dir.resolve("registry.log"));
    }

    /** Stops the registry process (and keeps its storage) to simulate an outage. */
    public void kill() throws InterruptedException {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }

    private static String run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed: " + out);
        }
        return out;
    }

    @Override
    public void close() throws InterruptedException, IOException {
        if (tokens != null) {
            tokens.close();
        }
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
