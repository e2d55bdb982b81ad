package dev.starling.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.daemon.DaemonConfig;
import dev.starling.daemon.DaemonProcess;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.CredentialProvider;
import dev.starling.registry.Credentials;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.RegistryClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A private image through the layer store: refused until `starling store-auth` hands the daemon the
 * pull's credentials (the ALS auth-helper protocol), served after, and again after a restart when
 * the daemon keeps them in its root-only file.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class StoreCredentialsTest {
    @TempDir
    Path dir;

    private int storeAuth(Path socket, String stdin) throws Exception {
        Path input = Files.writeString(dir.resolve("helper-input.json"), stdin);
        List<String> argv = DaemonProcess.starlingCommand();
        argv.addAll(List.of("store-auth", socket.toString()));
        Process p = new ProcessBuilder(argv).redirectInput(input.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("helper.log").toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        return p.exitValue();
    }

    @Test
    void aPrivateImageResolvesOnceTheAuthHelperHandsOverItsCredentials() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Files.writeString(tree.resolve("secret.txt"), "private bytes\n");
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve("layer.esgz"), ConvertOptions.defaults());
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.HTPASSWD)) {
            ImageReference image = registry.ref("private/app:v1");
            Credentials good = Credentials.basic(LocalRegistry.USER, LocalRegistry.PASSWORD);
            try (RegistryClient client = new RegistryClient(RegistryClient.Settings.defaults()
                    .withCredentials(CredentialProvider.of(registry.host(), good)))) {
                EStargzImages.push(client, image, List.of(layer));
            }
            Path authFile = dir.resolve("auth/credentials.json");
            List<String> options = new ArrayList<>(List.of("--peer-listen", "127.0.0.1:" + DaemonConfig.freePortPair(),
                    "--store", dir.resolve("store").toString(), "--store-auth-file", authFile.toString(),
                    "--insecure-registry", registry.host(), "--cache-size", "256M"));
            Path secret = dir.resolve("store").resolve(Base64.getEncoder().encodeToString(image.toString().getBytes(StandardCharsets.UTF_8)))
                    .resolve(layer.tocDigest()).resolve("diff/secret.txt");
            try (DaemonProcess daemon = DaemonProcess.start(dir, "node", options).awaitReady()) {
                FileSystemException refused = assertThrows(FileSystemException.class, () -> Files.readString(secret));
                assertTrue(String.valueOf(refused.getReason()).contains("Input/output error"), "no credentials yet: " + refused);

                assertNotEquals(0, storeAuth(daemon.socket(), "not json"), "garbage on stdin is refused");
                // what containers/image writes: Go's DockerAuthConfig, field names as Go spells them
                assertEquals(0, storeAuth(daemon.socket(), "{\"" + image + "\":{\"Username\":\"" + LocalRegistry.USER
                        + "\",\"Password\":\"" + LocalRegistry.PASSWORD + "\",\"IdentityToken\":\"\"}}"),
                        Files.readString(dir.resolve("helper.log")));
                assertEquals("private bytes\n", Files.readString(secret), "resolved with the helper's credentials: " + daemon.log());
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(authFile)),
                        "kept where only root reads them");
            }
            try (DaemonProcess restarted = DaemonProcess.start(dir, "node", options).awaitReady()) {
                assertEquals("private bytes\n", Files.readString(secret), "a restarted daemon resolves it again: " + restarted.log());
            }
        }
    }
}
