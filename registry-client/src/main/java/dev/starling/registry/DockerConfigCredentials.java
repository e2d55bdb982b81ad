package dev.starling.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Credentials from Docker's {@code config.json} ({@code $DOCKER_CONFIG/config.json}, else
 * {@code ~/.docker/config.json}), read again on every call so a {@code docker login} takes effect at
 * once: {@code credHelpers} for the host, then {@code credsStore}, then {@code auths} (base64
 * {@code user:password}, or an identity token). Docker Hub is keyed as
 * {@code https://index.docker.io/v1/}, as Docker writes it.
 */
public final class DockerConfigCredentials implements CredentialProvider {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String DOCKER_HUB_KEY = "https://index.docker.io/v1/";

    private final Path configFile;
    /** Where {@code docker-credential-*} programs are looked up: $PATH, as Docker does. */
    private final List<Path> helperPath;

    public DockerConfigCredentials(Path configFile) {
        this(configFile, pathDirectories());
    }

    DockerConfigCredentials(Path configFile, List<Path> helperPath) {
        this.configFile = configFile;
        this.helperPath = List.copyOf(helperPath);
    }

    private static List<Path> pathDirectories() {
        String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
        return java.util.Arrays.stream(path.split(":")).filter(s -> !s.isEmpty()).map(Path::of).toList();
    }

    /** The file Docker itself would use. */
    public static DockerConfigCredentials fromEnvironment() {
        String dir = System.getenv("DOCKER_CONFIG");
        Path base = dir != null && !dir.isBlank() ? Path.of(dir) : Path.of(System.getProperty("user.home"), ".docker");
        return new DockerConfigCredentials(base.resolve("config.json"));
    }

    @Override
    public String source() {
        return configFile.toString();
    }

    @Override
    public Optional<Credentials> credentials(String registry) throws IOException {
        if (!Files.isRegularFile(configFile)) {
            return Optional.empty();
        }
        JsonNode config;
        try {
            config = JSON.readTree(configFile.toFile());
        } catch (IOException e) {
            throw new IOException(configFile + " is not valid JSON: " + e.getMessage(), e);
        }
        List<String> keys = registry.equals(ImageReference.DOCKER_HUB)
                ? List.of(DOCKER_HUB_KEY, "docker.io", "index.docker.io", "registry-1.docker.io")
                : List.of(registry, "https://" + registry, "http://" + registry, "https://" + registry + "/v1/");
        for (String key : keys) {
            String helper = config.path("credHelpers").path(key).asText("");
            if (!helper.isEmpty()) {
                return fromHelper(helper, key);
            }
        }
        String store = config.path("credsStore").asText("");
        if (!store.isEmpty()) {
            Optional<Credentials> fromStore = fromHelper(store, keys.getFirst());
            if (fromStore.isPresent()) {
                return fromStore;
            }
        }
        for (String key : keys) {
            JsonNode entry = config.path("auths").path(key);
            if (entry.isMissingNode()) {
                continue;
            }
            String identity = entry.path("identitytoken").asText("");
            if (!identity.isEmpty()) {
                return Optional.of(Credentials.identityToken(identity));
            }
            String auth = entry.path("auth").asText("");
            if (!auth.isEmpty()) {
                String decoded;
                try {
                    decoded = new String(Base64.getDecoder().decode(auth.strip()), StandardCharsets.UTF_8);
                } catch (IllegalArgumentException e) {
                    throw new IOException(configFile + ": the auth entry for " + key + " is not base64");
                }
                int colon = decoded.indexOf(':');
                if (colon < 0) {
                    throw new IOException(configFile + ": the auth entry for " + key + " is not user:password");
                }
                return Optional.of(Credentials.basic(decoded.substring(0, colon), decoded.substring(colon + 1)));
            }
            if (entry.has("username")) {
                return Optional.of(Credentials.basic(entry.path("username").asText(), entry.path("password").asText()));
            }
        }
        return Optional.empty();
    }

    /** Runs {@code docker-credential-<helper> get} with the server URL on stdin, as Docker does. */
    private Optional<Credentials> fromHelper(String helper, String serverUrl) throws IOException {
        String program = "docker-credential-" + helper;
        Path executable = helperPath.stream().map(d -> d.resolve(program)).filter(Files::isExecutable).findFirst()
                .orElseThrow(() -> new IOException(configFile + " names credential helper " + program
                        + ", which is not on PATH"));
        Process p = new ProcessBuilder(executable.toString(), "get").start();
        p.getOutputStream().write(serverUrl.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readNBytes(1 << 20);
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(program + " did not answer within 30 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + program, e);
        }
        String text = new String(out, StandardCharsets.UTF_8).strip();
        if (p.exitValue() != 0) {
            if (text.contains("credentials not found")) {
                return Optional.empty();
            }
            throw new IOException(program + " get failed: " + text);
        }
        JsonNode answer = JSON.readTree(text);
        String user = answer.path("Username").asText("");
        String secret = answer.path("Secret").asText("");
        if (secret.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(user.equals("<token>") || user.isEmpty() ? Credentials.identityToken(secret)
                : Credentials.basic(user, secret));
    }
}
