package dev.starling.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Basic auth against a real registry with a bcrypt htpasswd file, and token auth with signed JWTs. */
class AuthTest {
    static LocalRegistry registry;
    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        registry = LocalRegistry.start(LocalRegistry.Auth.HTPASSWD);
    }

    @AfterAll
    static void stop() throws Exception {
        registry.close();
    }

    private static RegistryClient client(Credentials c) {
        return new RegistryClient(RegistryClient.Settings.defaults()
                .withCredentials(c == null ? CredentialProvider.ANONYMOUS : CredentialProvider.of(registry.host(), c)));
    }

    @Test
    void withoutCredentialsTheErrorSaysWhatToDo() {
        try (RegistryClient anonymous = client(null)) {
            RegistryException e = assertThrows(RegistryException.class,
                    () -> anonymous.manifest(registry.ref("private/app:v1")));
            assertEquals(401, e.status());
            assertTrue(e.getMessage().contains("docker login"), e.getMessage());
        }
    }

    @Test
    void wrongPasswordIsRefused() {
        try (RegistryClient wrong = client(Credentials.basic(LocalRegistry.USER, "wrong"))) {
            RegistryException e = assertThrows(RegistryException.class,
                    () -> wrong.blobExists(registry.ref("private/app:v1"), "sha256:" + "1".repeat(64)));
            assertEquals(401, e.status());
            assertTrue(e.getMessage().contains(registry.host() + " refused the credentials configured for it")
                    && e.getMessage().contains("docker login"), "says the configured credentials were refused: " + e.getMessage());
        }
        java.nio.file.Path config = null;
        try {
            config = java.nio.file.Files.createTempFile("docker-config", ".json");
            java.nio.file.Files.writeString(config, "{\"auths\":{\"" + registry.host() + "\":{\"auth\":\""
                    + java.util.Base64.getEncoder().encodeToString((LocalRegistry.USER + ":wrong").getBytes()) + "\"}}}");
            try (RegistryClient fromFile = new RegistryClient(RegistryClient.Settings.defaults()
                    .withCredentials(new DockerConfigCredentials(config)))) {
                java.nio.file.Path file = config;
                RegistryException e = assertThrows(RegistryException.class,
                        () -> fromFile.blobExists(registry.ref("private/app:v1"), "sha256:" + "1".repeat(64)));
                assertTrue(e.getMessage().contains("from " + file), "names where the credentials came from: " + e.getMessage());
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        } finally {
            if (config != null) {
                config.toFile().delete();
            }
        }
    }

    @Test
    void rightPasswordPushesAndReads() throws Exception {
        try (RegistryClient ok = client(Credentials.basic(LocalRegistry.USER, LocalRegistry.PASSWORD))) {
            ImageReference repo = registry.ref("private/app:v1");
            Path file = dir.resolve("blob");
            Files.writeString(file, "authenticated bytes");
            String digest = Manifest.sha256(Files.readAllBytes(file));
            assertEquals(BlobPusher.Outcome.UPLOADED, ok.pushBlob(repo, digest, file, null));
            assertEquals("bytes", new String(ok.readBlob(repo, digest, 14, 5)));
        }
    }

    @Test
    void bearerTokenFlowAgainstARealRegistryVerifyingSignedTokens() throws Exception {
        try (LocalRegistry tokenRegistry = LocalRegistry.start(LocalRegistry.Auth.TOKEN)) {
            ImageReference repo = tokenRegistry.ref("tokened/app:v1");
            try (RegistryClient ok = new RegistryClient(RegistryClient.Settings.defaults().withCredentials(
                    CredentialProvider.of(tokenRegistry.host(), Credentials.basic(LocalRegistry.USER, LocalRegistry.PASSWORD))))) {
                Path file = dir.resolve("token-blob");
                Files.writeString(file, "bytes behind a bearer token");
                String digest = Manifest.sha256(Files.readAllBytes(file));
                assertEquals(BlobPusher.Outcome.UPLOADED, ok.pushBlob(repo, digest, file, null));
                assertEquals("bearer", new String(ok.readBlob(repo, digest, 15, 6)));
                assertEquals("token", new String(ok.readBlob(repo, digest, 22, 5)));
                int issued = tokenRegistry.tokensIssued();
                assertTrue(issued <= 2, "one token per scope (push, then pull), cached: " + issued);
            }
            try (RegistryClient wrong = new RegistryClient(RegistryClient.Settings.defaults().withCredentials(
                    CredentialProvider.of(tokenRegistry.host(), Credentials.basic(LocalRegistry.USER, "nope"))))) {
                RegistryException e = assertThrows(RegistryException.class, () -> wrong.manifest(repo));
                assertTrue(e.getMessage().contains("token server"), e.getMessage());
                assertEquals(401, e.status());
            }
        }
    }
}
