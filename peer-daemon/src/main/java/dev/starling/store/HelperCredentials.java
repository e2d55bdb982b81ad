package dev.starling.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.registry.CredentialProvider;
import dev.starling.registry.Credentials;
import dev.starling.registry.ImageReference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Credentials that containers/image hands the store through its auth helper
 * ({@code additional-layer-store-auth-helper = "starling-store-auth"} in registries.conf; compat doc
 * section 2.5): a map of image reference to user name and password or identity token, kept per
 * registry host, in memory and, when a file is given, in that root-only file so a restarted daemon
 * can resolve private images again before the next pull. They are used for the reference's own
 * registry only, never for a mirror, and come before the docker config.
 */
public final class HelperCredentials implements CredentialProvider {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Map<String, Credentials> byRegistry = new ConcurrentHashMap<>();
    private final Path file;

    private HelperCredentials(Path file) {
        this.file = file;
    }

    /** Credentials kept in memory only. */
    public static HelperCredentials inMemory() {
        return new HelperCredentials(null);
    }

    /** Credentials kept in {@code file} too (mode 0600), read from it now if it exists. */
    public static HelperCredentials persistedIn(Path file) throws IOException {
        HelperCredentials c = new HelperCredentials(file);
        if (Files.exists(file)) {
            JsonNode saved = JSON.readTree(file.toFile());
            if (saved == null || !saved.isObject()) {
                throw new IOException(file + " is not the JSON object of credentials the daemon writes");
            }
            saved.properties().forEach(e -> c.byRegistry.put(e.getKey(), parse(e.getKey(), e.getValue())));
        }
        return c;
    }

    /**
     * Adds what the helper was given: {@code {"<image ref>": {"username", "password", "identityToken"}}}.
     *
     * @return how many references it named
     * @throws IllegalArgumentException when it is not that shape
     */
    public int add(JsonNode helperInput) throws IOException {
        if (helperInput == null || !helperInput.isObject()) {
            throw new IllegalArgumentException("the auth helper's input is a JSON object of image reference to credentials");
        }
        Map<String, Credentials> parsed = new java.util.LinkedHashMap<>();
        for (var e : helperInput.properties()) {
            String registry = ImageReference.parse(e.getKey()).registry();
            parsed.put(registry, parse(e.getKey(), e.getValue()));
        }
        byRegistry.putAll(parsed);
        save();
        return parsed.size();
    }

    /** Keeps {@code credentials} for {@code registry} (what the CRI image-service proxy saw a pull carry). */
    public void put(String registry, Credentials credentials) throws IOException {
        byRegistry.put(registry, credentials);
        save();
    }

    private static Credentials parse(String name, JsonNode c) {
        if (!c.isObject()) {
            throw new IllegalArgumentException("the credentials for " + name + " are not a JSON object");
        }
        String token = field(c, "identityToken");
        if (!token.isEmpty()) {
            return Credentials.identityToken(token);
        }
        return Credentials.basic(field(c, "username"), field(c, "password"));
    }

    /** A field by name in any case: containers/image writes Go's DockerAuthConfig, which Go decodes so. */
    private static String field(JsonNode c, String name) {
        for (var e : c.properties()) {
            if (e.getKey().equalsIgnoreCase(name)) {
                return e.getValue().asText("");
            }
        }
        return "";
    }

    private synchronized void save() throws IOException {
        if (file == null) {
            return;
        }
        ObjectNode out = JSON.createObjectNode();
        byRegistry.forEach((registry, c) -> {
            ObjectNode o = out.putObject(registry);
            if (c.identityToken()) {
                o.put("identityToken", c.secret());
            } else {
                o.put("username", c.username()).put("password", c.secret());
            }
        });
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.write(tmp, JSON.writeValueAsBytes(out));
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public Optional<Credentials> credentials(String registry) {
        return Optional.ofNullable(byRegistry.get(registry));
    }

    @Override
    public String source() {
        return "the credentials the Additional Layer Store's auth helper was given" + (file == null ? "" : " (" + file + ")");
    }

    /** These credentials first, then {@code fallback}'s. */
    public CredentialProvider before(CredentialProvider fallback) {
        HelperCredentials self = this;
        return new CredentialProvider() {
            @Override
            public Optional<Credentials> credentials(String registry) throws IOException {
                Optional<Credentials> c = self.credentials(registry);
                return c.isPresent() ? c : fallback.credentials(registry);
            }

            @Override
            public String source() {
                return self.byRegistry.isEmpty() ? fallback.source() : self.source() + " or " + fallback.source();
            }
        };
    }
}
