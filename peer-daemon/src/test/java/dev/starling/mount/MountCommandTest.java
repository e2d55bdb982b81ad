package dev.starling.mount;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.cli.StarlingCli;
import dev.starling.convert.ImageConverter;
import dev.starling.estargz.Processes;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.MediaTypes;
import dev.starling.registry.RegistryClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code starling mount IMAGE DIR} against a real registry: a two-layer eStargz image appears at
 * DIR at once (only footers and TOCs fetched), files read back byte for byte, whiteouts and opaque
 * directories of the upper layer apply, and {@code starling umount DIR} ends it all.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MountCommandTest {
    @TempDir
    Path dir;

    @Test
    void mountServesTheImageLazilyAndUmountEndsIt() throws Exception {
        byte[] big = new byte[6 * 1024 * 1024];
        new Random(9).nextBytes(big);
        Files.createDirectories(dir.resolve("base/etc"));
        Files.createDirectories(dir.resolve("base/data"));
        Files.write(dir.resolve("base/data/big.bin"), big);
        Processes.run(dir, "sh", "-c", "echo base > base/etc/os-release && echo gone > base/etc/old && mkdir -p base/cache"
                + " && echo stale > base/cache/a && mkdir -p upper/etc upper/cache && echo new > upper/etc/app.conf"
                + " && touch upper/etc/.wh.old && touch upper/cache/.wh..wh..opq && echo fresh > upper/cache/b"
                + " && tar -C base -czf base.tar.gz . && tar -C upper -czf upper.tar.gz .");
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            ImageReference src = registry.ref("mount/app:v1");
            pushImage(client, src, List.of(dir.resolve("base.tar.gz"), dir.resolve("upper.tar.gz")));
            ImageReference esgz = registry.ref("mount/app:esgz");
            new ImageConverter(client, ConvertOptions.defaults().withChunkSize(1 << 20), dir, ImageConverter.Listener.NONE)
                    .convert(src, esgz, null);

            long servedBeforeMount = registry.blobBytesServed();
            Path target = dir.resolve("rootfs");
            CompletableFuture<Integer> mount = CompletableFuture.supplyAsync(
                    () -> StarlingCli.run("mount", "--cache-dir", dir.resolve("chunks").toString(), esgz.toString(),
                            target.toString()));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.exists(target.resolve("etc/os-release")) && System.nanoTime() < deadline && !mount.isDone()) {
                Thread.sleep(50);
            }
            try {
                assertEquals("base\n", Files.readString(target.resolve("etc/os-release")));
                assertEquals("new\n", Files.readString(target.resolve("etc/app.conf")));
                assertFalse(Files.exists(target.resolve("etc/old")), "the upper layer's whiteout hides etc/old");
                try (var cache = Files.list(target.resolve("cache"))) {
                    assertEquals(List.of("b"), cache.map(p -> p.getFileName().toString()).toList(),
                            "the opaque cache/ hides the lower one");
                }
                assertArrayEquals(big, Files.readAllBytes(target.resolve("data/big.bin")));
            } finally {
                assertEquals(0, StarlingCli.run("umount", target.toString()));
            }
            assertEquals(0, mount.get(30, TimeUnit.SECONDS), "mount exits once its overlay is gone");
            String mounts = Files.readString(Path.of("/proc/self/mountinfo"));
            assertFalse(mounts.contains(target.toString()), "overlay gone");
            assertFalse(mounts.contains("starling:mount/app"), "layer mounts gone");
            Thread.sleep(200); // the registry writes its access log after the response
            long egress = registry.blobBytesServed() - servedBeforeMount;
            assertTrue(egress >= big.length && egress < big.length + (1 << 20),
                    "reading every file fetched each chunk once, not once per FUSE read: " + egress + " bytes");

            // A restart with the same cache dir: chunks come from the disk tier, not the registry.
            long servedBeforeRestart = registry.blobBytesServed();
            CompletableFuture<Integer> again = CompletableFuture.supplyAsync(
                    () -> StarlingCli.run("mount", "--cache-dir", dir.resolve("chunks").toString(), esgz.toString(),
                            target.toString()));
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.exists(target.resolve("etc/os-release")) && System.nanoTime() < deadline && !again.isDone()) {
                Thread.sleep(50);
            }
            try {
                assertArrayEquals(big, Files.readAllBytes(target.resolve("data/big.bin")));
            } finally {
                assertEquals(0, StarlingCli.run("umount", target.toString()));
            }
            assertEquals(0, again.get(30, TimeUnit.SECONDS));
            Thread.sleep(200);
            long egressAfterRestart = registry.blobBytesServed() - servedBeforeRestart;
            assertTrue(egressAfterRestart < 256 * 1024, "only footers and TOCs after a restart: " + egressAfterRestart);
        }
    }

    /** kill -9 leaves an overlay over dead layer mounts at DIR; the next `starling mount DIR` clears them and serves. */
    @Test
    void mountAfterAKilledDaemonClearsItsDeadMounts() throws Exception {
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            ImageReference esgz = pushKilledImage(registry, client);
            Path target = dir.resolve("rootfs");
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            Process daemon = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                    System.getProperty("java.class.path"), StarlingCli.class.getName(), "mount", "--cache-dir",
                    dir.resolve("chunks").toString(), esgz.toString(), target.toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("killed.log").toFile()).start();
            try {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (!Files.exists(target.resolve("etc/os-release")) && daemon.isAlive() && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                assertEquals("killed\n", Files.readString(target.resolve("etc/os-release")),
                        () -> "the first daemon serves: " + log(dir.resolve("killed.log")));
            } finally {
                daemon.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            assertTrue(isDead(target), "kill -9 leaves the overlay behind, dead");
            assertEquals(2, deadMountsOfTheKilledImage(), "the overlay and the layer mount under it");

            CompletableFuture<Integer> again = CompletableFuture.supplyAsync(
                    () -> StarlingCli.run("mount", "--cache-dir", dir.resolve("chunks").toString(), esgz.toString(),
                            target.toString()));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            // the dead overlay still answers lookups from the dentry cache; only opening a file fails
            while ((isDead(target) || !Files.exists(target.resolve("etc/os-release"))) && !again.isDone()
                    && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            try {
                assertEquals("killed\n", Files.readString(target.resolve("etc/os-release")));
                assertEquals(0, deadMountsOfTheKilledImage(), "the dead overlay and layer mount were cleared");
                assertEquals(1, StarlingCli.run("mount", "--cache-dir", dir.resolve("chunks").toString(), esgz.toString(),
                        target.toString()), "a target a live mount serves is refused, not stacked on");
            } finally {
                assertEquals(0, StarlingCli.run("umount", target.toString()));
            }
            assertEquals(0, again.get(30, TimeUnit.SECONDS));
            assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(target.toString()), "nothing left at DIR");
        }
    }

    /**
     * SIGTERM (what systemd and `kill` send) and Ctrl-C unmount and clean up as `starling umount`
     * does, and say what was fetched; `starling umount` of a mount whose process was killed clears
     * its dead layer mounts too.
     */
    @Test
    void sigtermCleansUpAndUmountOfAKilledMountClearsItsLayers() throws Exception {
        Path tmp = Files.createDirectories(dir.resolve("tmp"));
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            ImageReference esgz = pushKilledImage(registry, client);
            Path target = dir.resolve("rootfs");
            for (boolean kill9 : new boolean[] {false, true}) {
                Path log = dir.resolve("signal-" + kill9 + ".log");
                String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
                Process mount = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Djava.io.tmpdir=" + tmp,
                        "-cp", System.getProperty("java.class.path"), StarlingCli.class.getName(), "mount", "--cache-dir",
                        dir.resolve("chunks").toString(), "--cache-size", "64M", esgz.toString(), target.toString())
                        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (!Files.exists(target.resolve("etc/os-release")) && mount.isAlive() && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                assertEquals("killed\n", Files.readString(target.resolve("etc/os-release")), () -> log(log));
                if (!kill9) {
                    mount.destroy(); // SIGTERM
                    assertTrue(mount.waitFor(30, TimeUnit.SECONDS), "SIGTERM ends it");
                    assertTrue(log(log).contains("unmounted " + target + "; fetched"), "a summary: " + log(log));
                    try (var left = Files.list(tmp)) {
                        assertEquals(List.of(), left.map(Path::toString).filter(n -> n.contains("starling-mount-")).toList(),
                                "its work directory is gone");
                    }
                    assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains("starling:mount/killed"),
                            "its layer mounts are gone");
                } else {
                    mount.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                    assertEquals(2, deadMountsOfTheKilledImage(), "kill -9 leaves the overlay and its layer mount");
                    assertEquals(0, StarlingCli.run("umount", target.toString()));
                    assertEquals(0, deadMountsOfTheKilledImage(), "umount cleared the dead layer mount too");
                }
                assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(" " + target + " "), "nothing at DIR");
            }
        }
    }

    /** The one-file image the kill tests mount: {@code etc/os-release} says "killed". */
    private ImageReference pushKilledImage(LocalRegistry registry, RegistryClient client) throws Exception {
        Files.createDirectories(dir.resolve("tree/etc"));
        Files.writeString(dir.resolve("tree/etc/os-release"), "killed\n");
        Processes.run(dir, "tar", "-C", "tree", "-czf", "layer.tar.gz", ".");
        ImageReference src = registry.ref("mount/killed:v1");
        pushImage(client, src, List.of(dir.resolve("layer.tar.gz")));
        ImageReference esgz = registry.ref("mount/killed:esgz");
        new ImageConverter(client, ConvertOptions.defaults(), dir, ImageConverter.Listener.NONE).convert(src, esgz, null);
        return esgz;
    }

    private static boolean isDead(Path p) {
        try {
            Files.readAttributes(p, "unix:ino");
            return false;
        } catch (java.io.IOException e) {
            return e.getMessage() != null && e.getMessage().contains("not connected");
        }
    }

    /** Mounts of this test's image (its one layer mount, the overlay at DIR) whose daemon is gone. */
    private long deadMountsOfTheKilledImage() throws java.io.IOException {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .filter(l -> l.contains("starling:mount/killed") || l.contains(" " + dir.resolve("rootfs") + " "))
                .map(l -> Path.of(l.split(" ")[4]))
                .filter(MountCommandTest::isDead)
                .count();
    }

    private static String log(Path file) {
        try {
            return Files.readString(file);
        } catch (java.io.IOException e) {
            return "(no log)";
        }
    }

    static void pushImage(RegistryClient client, ImageReference ref, List<Path> layers) throws Exception {
        StringBuilder descriptors = new StringBuilder();
        StringBuilder diffIds = new StringBuilder();
        for (Path layer : layers) {
            byte[] bytes = Files.readAllBytes(layer);
            String digest = Manifest.sha256(bytes);
            client.pushBlob(ref, digest, layer, null);
            try (var in = new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(bytes))) {
                diffIds.append(diffIds.isEmpty() ? "" : ",").append('"').append(Manifest.sha256(in.readAllBytes())).append('"');
            }
            descriptors.append(descriptors.isEmpty() ? "" : ",").append("{\"mediaType\":\"")
                    .append(MediaTypes.OCI_LAYER_GZIP).append("\",\"digest\":\"").append(digest)
                    .append("\",\"size\":").append(bytes.length).append('}');
        }
        byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                + diffIds + "]}}").getBytes(StandardCharsets.UTF_8);
        Path configFile = Files.createTempFile("config", ".json");
        Files.write(configFile, config);
        client.pushBlob(ref, Manifest.sha256(config), configFile, null);
        Files.delete(configFile);
        client.pushManifest(ref, ("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_MANIFEST
                + "\",\"config\":{\"mediaType\":\"" + MediaTypes.OCI_CONFIG + "\",\"digest\":\"" + Manifest.sha256(config)
                + "\",\"size\":" + config.length + "},\"layers\":[" + descriptors + "]}").getBytes(StandardCharsets.UTF_8),
                MediaTypes.OCI_MANIFEST);
    }
}
