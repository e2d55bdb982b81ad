package dev.starling.mount;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.StateFile;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Faults and fetch policies seen through a real mount (FUSE layers under overlayfs) of an image in
 * a real registry: an outage after mounting, a background fetch that makes the node independent
 * of the registry, a prefetched prioritized area, a registry serving wrong bytes, and read-ahead
 * for a sequential reader but not for a random one.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class MountFaultTest {
    @TempDir
    Path dir;

    LocalRegistry registry;
    RegistryClient client;
    Path tree;
    byte[] big;
    byte[] second;

    @BeforeEach
    void start() throws Exception {
        registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
        client = RegistryClient.anonymous();
        tree = Files.createDirectories(dir.resolve("tree"));
        Files.createDirectories(tree.resolve("app"));
        Files.createDirectories(tree.resolve("data"));
        Files.writeString(tree.resolve("app/config"), "config\n");
        Files.writeString(tree.resolve("app/other"), "other\n".repeat(1000));
        Random random = new Random(7);
        big = new byte[40 << 20];
        random.nextBytes(big);
        second = new byte[40 << 20];
        random.nextBytes(second);
        Files.write(tree.resolve("data/big.bin"), big);
        Files.write(tree.resolve("data/second.bin"), second);
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        registry.close();
    }

    private record Pushed(ImageReference ref, String layerDigest) {
    }

    private Pushed push(String tag, ConvertOptions options) throws Exception {
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve(tag + ".esgz"), options);
        ImageReference ref = registry.ref("faults/app:" + tag);
        EStargzImages.push(client, ref, List.of(layer));
        return new Pushed(ref, Manifest.sha256(Files.readAllBytes(layer.blob())));
    }

    private ImageMount mount(Pushed image, FetchOptions options) throws IOException {
        return ImageMount.mount(client, image.ref(), Descriptor.Platform.parse("linux/amd64"), dir.resolve("rootfs"),
                Files.createDirectories(dir.resolve("work-" + System.nanoTime())),
                new DiskChunkCache(dir.resolve("chunks-" + System.nanoTime()), 1L << 30), options, MountOptions.DEFAULTS);
    }

    private String state(Pushed image) throws IOException {
        return Files.readString(dir.resolve("rootfs").resolve(StateFile.DIRECTORY).resolve(image.layerDigest() + ".json"));
    }

    private static long field(String state, String name) {
        return StateFiles.field(state, name);
    }

    private String awaitState(Pushed image, Predicate<String> done) throws Exception {
        return StateFiles.await(() -> state(image), done);
    }

    private static final FetchOptions ON_DEMAND_ONLY = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false);

    @Test
    void registryOutageAfterMountFailsOnlyWhatIsNotLocalAndRecovers() throws Exception {
        Pushed image = push("outage", ConvertOptions.defaults());
        try (ImageMount mount = mount(image, ON_DEMAND_ONLY.withFetchUnit(1))) {
            Path root = dir.resolve("rootfs");
            assertEquals("config\n", Files.readString(root.resolve("app/config")));
            registry.stop();
            try {
                assertEquals("config\n", Files.readString(root.resolve("app/config")), "what was read still reads");
                IOException eio = assertThrows(IOException.class, () -> Files.readAllBytes(root.resolve("app/other")));
                assertTrue(eio.getMessage().contains("Input/output error"), eio.getMessage());
                String s = state(image);
                assertTrue(s.contains("\"error\":\"fetching") && s.contains("app/other"), "the state file says what failed: " + s);
                assertTrue(Files.readString(root.resolve("app/config")).equals("config\n"), "the mount keeps serving");
            } finally {
                registry.restart();
            }
            assertEquals("other\n".repeat(1000), Files.readString(root.resolve("app/other")), "read again once it is back");
        }
    }

    @Test
    void backgroundFetchLeavesNothingThatNeedsTheRegistry() throws Exception {
        Pushed image = push("background", ConvertOptions.defaults());
        try (ImageMount mount = mount(image, FetchOptions.DEFAULTS.withBackgroundQuietMillis(0).withBackgroundBytesPerSecond(0))) {
            String done = awaitState(image, s -> s.contains("\"backgroundFetch\":\"done\""));
            assertEquals(field(done, "totalBytes"), field(done, "localBytes"), done);
            assertTrue(done.contains("\"fetchedPercent\":100.0"), done);
            registry.stop();
            try {
                Path root = dir.resolve("rootfs");
                assertArrayEquals(big, Files.readAllBytes(root.resolve("data/big.bin")));
                assertArrayEquals(second, Files.readAllBytes(root.resolve("data/second.bin")));
                assertEquals("other\n".repeat(1000), Files.readString(root.resolve("app/other")));
                assertFalse(state(image).contains("\"error\""), state(image));
            } finally {
                registry.restart();
            }
        }
    }

    @Test
    void prioritizedFilesArePrefetchedOnMount() throws Exception {
        Pushed image = push("prefetch", ConvertOptions.defaults().withPrioritizedFiles(List.of("app/config")));
        try (ImageMount mount = mount(image, ON_DEMAND_ONLY.withPrefetch(true).withFetchUnit(1))) {
            awaitState(image, s -> s.contains("\"prefetch\":\"done\""));
            registry.stop();
            try {
                Path root = dir.resolve("rootfs");
                assertEquals("config\n", Files.readString(root.resolve("app/config")), "prefetched before anyone read it");
                assertThrows(IOException.class, () -> Files.readAllBytes(root.resolve("app/other")),
                        "outside the prioritized area, and no background fetch");
            } finally {
                registry.restart();
            }
        }
    }

    /**
     * A registry (or a tampered blob) that serves other bytes than the TOC describes: the same
     * layer written twice with stored (level 0) gzip, where one file differs, has the same length
     * and layout; the second's payload under the first's TOC is well-formed gzip with wrong content.
     */
    @Test
    void wrongBytesFailWithEioAndAreNeverServed() throws Exception {
        Path a = Files.createDirectories(dir.resolve("a"));
        Path b = Files.createDirectories(dir.resolve("b"));
        byte[] truth = new byte[200_000];
        new Random(1).nextBytes(truth);
        byte[] lie = truth.clone();
        lie[150_000] ^= 1;
        for (Path t : List.of(a, b)) {
            Files.writeString(t.resolve("fine"), "fine\n");
            Files.write(t.resolve("x"), t == a ? truth : lie);
            for (String f : List.of("fine", "x", ".")) {
                Files.setLastModifiedTime(t.resolve(f), FileTime.fromMillis(1_700_000_000_000L));
            }
        }
        ConvertOptions stored = ConvertOptions.defaults().withLevel(0);
        EStargzImages.Layer honest = EStargzImages.convert(a, dir.resolve("a.esgz"), stored);
        EStargzImages.Layer other = EStargzImages.convert(b, dir.resolve("b.esgz"), stored);
        byte[] honestBytes = Files.readAllBytes(honest.blob());
        byte[] otherBytes = Files.readAllBytes(other.blob());
        assertEquals(honestBytes.length, otherBytes.length, "stored gzip keeps the layout");
        long payloadEnd = EStargzBlob.open(RangeReader.of(honestBytes), honest.tocDigest()).index().payloadEnd();
        byte[] hybrid = honestBytes.clone();
        System.arraycopy(otherBytes, 0, hybrid, 0, (int) payloadEnd);
        assertNotEquals(Manifest.sha256(honestBytes), Manifest.sha256(hybrid));
        Path tampered = dir.resolve("tampered.esgz");
        Files.write(tampered, hybrid);
        ImageReference ref = registry.ref("faults/app:tampered");
        EStargzImages.push(client, ref, List.of(new EStargzImages.Layer(tampered, honest.tocDigest(), honest.diffId())));
        Pushed image = new Pushed(ref, Manifest.sha256(hybrid));
        try (ImageMount mount = mount(image, ON_DEMAND_ONLY.withFetchUnit(1))) {
            Path root = dir.resolve("rootfs");
            assertEquals("fine\n", Files.readString(root.resolve("fine")));
            for (int attempt = 0; attempt < 2; attempt++) {
                IOException eio = assertThrows(IOException.class, () -> Files.readAllBytes(root.resolve("x")));
                assertTrue(eio.getMessage().contains("Input/output error"), eio.getMessage());
            }
            String s = state(image);
            assertTrue(s.contains("\\\"x\\\" chunk at 0: content is sha256:") && s.contains("but the TOC says"),
                    "the state file names the file and the mismatch: " + s);
            assertTrue(field(s, "failures") >= 2, "each read tried again, and failed again: " + s);
        }
    }

    /**
     * A disk tier smaller than the mounted layers: the state must not claim what the cache no longer
     * holds, and background fetch stops and says so instead of fetching and evicting in a loop.
     */
    @Test
    void aCacheTooSmallForTheLayerIsReportedNotClaimedAsLocal() throws Exception {
        Pushed image = push("small-cache", ConvertOptions.defaults());
        try (ImageMount mount = ImageMount.mount(client, image.ref(), Descriptor.Platform.parse("linux/amd64"),
                dir.resolve("rootfs"), Files.createDirectories(dir.resolve("work-small")),
                new DiskChunkCache(dir.resolve("chunks-small"), 8L << 20),
                FetchOptions.DEFAULTS.withBackgroundQuietMillis(0).withBackgroundBytesPerSecond(0), MountOptions.DEFAULTS)) {
            Path root = dir.resolve("rootfs");
            assertArrayEquals(big, Files.readAllBytes(root.resolve("data/big.bin")), "40 MiB read through an 8 MiB cache");
            String s = awaitState(image, st -> st.contains("\"backgroundFetch\":\"stopped: the disk cache"));
            assertTrue(field(s, "localBytes") <= 8L << 20, "only what the cache holds counts as local: " + s);
            assertTrue(field(s, "fetchedSize") <= field(s, "size"), s);
            assertFalse(s.contains("\"fetchedPercent\":100.0"), s);
            assertTrue(s.contains("raise --cache-size"), "the state says what to do: " + s);
        }
    }

    @Test
    void fullCacheDiskStillServesReads() throws Exception {
        Pushed image = push("full", ConvertOptions.defaults());
        Path small = Files.createDirectories(dir.resolve("tiny-disk"));
        dev.starling.estargz.Processes.run(dir, "mount", "-t", "tmpfs", "-o", "size=1m", "starling-test", small.toString());
        DiskChunkCache fullDisk = new DiskChunkCache(small.resolve("chunks"), 1L << 30);
        try (ImageMount mount = ImageMount.mount(client, image.ref(), Descriptor.Platform.parse("linux/amd64"),
                dir.resolve("rootfs"), Files.createDirectories(dir.resolve("work-full")),
                fullDisk, ON_DEMAND_ONLY, MountOptions.DEFAULTS)) {
            Path root = dir.resolve("rootfs");
            assertArrayEquals(big, Files.readAllBytes(root.resolve("data/big.bin")), "40 MiB through a 1 MiB cache disk");
            assertEquals("config\n", Files.readString(root.resolve("app/config")));
            assertFalse(state(image).contains("\"error\""), "a full cache disk is not a read error: " + state(image));
            assertTrue(fullDisk.writeFailures() > 0, "the cache disk really filled up");
        } finally {
            dev.starling.estargz.Processes.run(dir, "umount", small.toString());
        }
    }

    @Test
    void sequentialReaderGetsChunksAheadRandomReaderDoesNot() throws Exception {
        Pushed image = push("sequential", ConvertOptions.defaults().withChunkSize(1 << 20));
        try (ImageMount mount = mount(image, ON_DEMAND_ONLY)) {
            Path root = dir.resolve("rootfs");
            byte[] piece = new byte[4096];
            try (FileChannel ch = FileChannel.open(root.resolve("data/second.bin"))) {
                ch.read(ByteBuffer.wrap(piece), 20 << 20);
            }
            assertArrayEquals(java.util.Arrays.copyOfRange(second, 20 << 20, (20 << 20) + 4096), piece);
            Thread.sleep(500);
            long afterRandom = field(state(image), "localBytes");
            assertTrue(afterRandom <= 3 << 20, "a random read fetches its chunk (and the kernel's small readahead): "
                    + afterRandom);
            try (InputStream in = Files.newInputStream(root.resolve("data/big.bin"))) {
                byte[] head = in.readNBytes(4 << 20);
                assertArrayEquals(java.util.Arrays.copyOf(big, 4 << 20), head);
            }
            // chunks ahead of the reader arrive, but a reader that stops after 4 MiB does not cost the
            // 32 MiB window: read-ahead starts at 1 MiB and grows while the reader goes on
            awaitState(image, s -> field(s, "localBytes") >= afterRandom + (6L << 20));
            Thread.sleep(500); // what was asked for has arrived
            String ahead = state(image);
            long fetched = field(ahead, "localBytes") - afterRandom;
            assertTrue(fetched <= 16L << 20, "a 4 MiB sequential read fetched " + (fetched >> 20) + " MiB: " + ahead);
            assertTrue(field(ahead, "fetchRequests") > 4, "ahead in parallel requests: " + ahead);
            assertArrayEquals(big, Files.readAllBytes(root.resolve("data/big.bin")));
            String done = state(image);
            long served = field(done, "memory") + field(done, "disk") + field(done, "registry");
            assertTrue(served >= big.length && served <= big.length + (4 << 20),
                    "bytesServed counts the bytes reads took (the page cache answers re-reads), not whole chunks: " + done);
        }
    }
}
