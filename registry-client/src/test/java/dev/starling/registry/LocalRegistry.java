package dev.starling.registry;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * A real registry for tests ({@link LocalRegistryServer}) with the auth modes the tests need:
 * none, htpasswd (bcrypt), or token auth backed by a {@link TokenServer}; removed on close.
 */
public final class LocalRegistry implements AutoCloseable {
    public enum Auth { NONE, HTPASSWD, TOKEN }

    public static final String USER = "starling";
    public static final String PASSWORD = "s3cret-pass";

    private final LocalRegistryServer server;
    private final Path dir;
    private final TokenServer tokens;

    private LocalRegistry(LocalRegistryServer server, Path dir, TokenServer tokens) {
        this.server = server;
        this.dir = dir;
        this.tokens = tokens;
    }

    /** Tokens the token server issued (TOKEN mode). */
    public int tokensIssued() {
        return tokens.tokensIssued.get();
    }

    public static LocalRegistry start(Auth auth) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("starling-registry-");
        StringBuilder config = new StringBuilder();
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
        return new LocalRegistry(LocalRegistryServer.start(dir, config.toString()), dir, tokens);
    }

    /** {@code 127.0.0.1:PORT}, the registry part of image references. */
    public String host() {
        return server.host();
    }

    public ImageReference ref(String repositoryAndTag) {
        return ImageReference.parse(host() + "/" + repositoryAndTag);
    }

    /** An outage: the registry stops answering (connection refused) until {@link #restart}. */
    public void stop() throws InterruptedException {
        server.stop();
    }

    public void restart() throws IOException, InterruptedException {
        server.restart();
    }

    public String log() throws IOException {
        return server.log();
    }

    /** Bytes of blob bodies served so far, from the registry's access log. */
    public long blobBytesServed() throws IOException {
        return server.blobBytesServed();
    }

    /** Every request the registry logged so far. */
    public java.util.List<LocalRegistryServer.Request> requests() throws IOException {
        return server.requests();
    }

    static String run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed: " + out);
        }
        return out;
    }

    @Override
    public void close() throws InterruptedException, IOException {
        if (tokens != null) {
            tokens.close();
        }
        server.close();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
