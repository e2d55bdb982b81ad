package dev.starling.registry;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Runs Debian's {@code docker-registry} (CNCF distribution) on a free loopback port with storage
 * and config under a directory of its own: the embedded registry of {@code starling demo}, and the
 * real registry of the tests. Access is logged as JSON to {@code registry.log}.
 */
public final class LocalRegistryServer implements AutoCloseable {
    private Process process;
    private final Path dir;
    private final int port;

    private LocalRegistryServer(Process process, Path dir, int port) {
        this.process = process;
        this.dir = dir;
        this.port = port;
    }

    /** Whether {@code docker-registry} is on this machine. */
    public static boolean installed() {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, "docker-registry"))) {
                return true;
            }
        }
        return false;
    }

    /** Starts a registry under {@code dir}; {@code extraConfig} is appended to its YAML (e.g. an auth section). */
    public static LocalRegistryServer start(Path dir, String extraConfig) throws IOException, InterruptedException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Files.writeString(dir.resolve("config.yml"), """
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
                """.formatted(dir.resolve("storage"), port) + extraConfig);
        LocalRegistryServer server = new LocalRegistryServer(null, dir, port);
        server.serve();
        return server;
    }

    /** Starts the process (again, after {@link #stop}: same port, same storage) and waits until it answers. */
    private void serve() throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder("docker-registry", "serve", dir.resolve("config.yml").toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("registry.log").toFile())).start();
        } catch (IOException e) {
            throw new IOException("docker-registry is not installed (Debian package docker-registry; bin/install-deps"
                    + " installs it): " + e.getMessage(), e);
        }
        process = p;
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
                    return;
                }
            } catch (IOException notYet) {
                Thread.sleep(50);
            }
        }
        close();
        throw new IOException("docker-registry did not start on port " + port + ": "
                + Files.readString(dir.resolve("registry.log")));
    }

    /** Stops the registry, keeping its port and storage, to play an outage; {@link #restart} ends it. */
    public void stop() throws InterruptedException {
        close();
    }

    public void restart() throws IOException, InterruptedException {
        if (process.isAlive()) {
            throw new IllegalStateException("the registry is running");
        }
        serve();
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

    /** One request in the access log: what was asked, by whom, and how many body bytes went back. */
    public record Request(String method, String uri, String userAgent, long written) {
        /** A GET of a blob's bytes (a HEAD sends none). */
        public boolean isBlobGet(String digest) {
            return method.equals("GET") && uri.contains("/blobs/" + digest);
        }
    }

    /** Every request logged so far, in order. */
    public java.util.List<Request> requests() throws IOException {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        java.util.List<Request> out = new java.util.ArrayList<>();
        for (String line : log().split("\n")) {
            if (!line.startsWith("{") || !line.contains("\"http.request.method\"") || !line.contains("\"http.response.status\"")) {
                continue;
            }
            com.fasterxml.jackson.databind.JsonNode r = json.readTree(line);
            out.add(new Request(r.path("http.request.method").asText(), r.path("http.request.uri").asText(),
                    r.path("http.request.useragent").asText(), r.path("http.response.written").asLong()));
        }
        return out;
    }

    /** Bytes of blob bodies the registry sent (its egress), from its access log. */
    public long blobBytesServed() throws IOException {
        long total = 0;
        for (String line : log().split("\n")) {
            if (line.contains("\"http.request.method\":\"GET\"") && line.contains("/blobs/")) {
                int at = line.indexOf("\"http.response.written\":");
                if (at >= 0) {
                    int start = at + "\"http.response.written\":".length();
                    int end = start;
                    while (end < line.length() && Character.isDigit(line.charAt(end))) {
                        end++;
                    }
                    total += Long.parseLong(line.substring(start, end));
                }
            }
        }
        return total;
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
    }
}
