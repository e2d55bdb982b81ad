package dev.starling.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * One layer's read path against a real registry: small files fetched many per Range request, one
 * fetch for concurrent readers of a chunk, failures recorded and retried, and a background fetch
 * that leaves the node independent of the registry.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class LayerReaderTest {
    static final int SMALL_FILES = 300;
    static LocalRegistry registry;
    static RegistryClient client;
    static ImageReference repo;
    static String blobDigest;
    static String tocDigest;
    static final List<byte[]> contents = new ArrayList<>();
    static Path work;

    @TempDir
    Path dir;

    @BeforeAll
    static void pushLayer() throws Exception {
        work = Files.createTempDirectory("starling-layer-reader-");
        Path tree = Files.createDirectories(work.resolve("tree"));
        Random random = new Random(42);
        for (int i = 0; i < SMALL_FILES; i++) {
            byte[] b = new byte[1000 + random.nextInt(3000)];
            random.nextBytes(b);
            contents.add(b);
            Files.write(tree.resolve(String.format("f-%03d", i)), b);
        }
        byte[] big = new byte[3 << 20];
        random.nextBytes(big);
        contents.add(big);
        Files.write(tree.resolve("z-big"), big);
        EStargzImages.Layer layer = EStargzImages.convert(tree, work.resolve("layer.esgz"), ConvertOptions.defaults());
        registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
        client = RegistryClient.anonymous();
        repo = registry.ref("reader/layer:v1");
        EStargzImages.push(client, repo, List.of(layer));
        blobDigest = Manifest.sha256(Files.readAllBytes(layer.blob()));
        tocDigest = layer.tocDigest();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        registry.close();
        try (var walk = Files.walk(work)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static final FetchOptions FOREGROUND_ONLY = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false);

    private record Opened(LayerReader reader, ChunkStore store) implements AutoCloseable {
        TocIndex index() {
            return reader.index();
        }

        @Override
        public void close() throws IOException {
            reader.close();
            store.close();
        }
    }

    private Opened open(FetchOptions options) throws IOException {
        RegistryRangeReader remote = new RegistryRangeReader(client, repo, blobDigest);
        EStargzBlob blob = EStargzBlob.open(remote, tocDigest);
        DiskChunkCache disk = new DiskChunkCache(dir.resolve("chunks-" + System.nanoTime()), 1L << 30);
        ChunkStore store = new ChunkStore(disk, 64 << 20, options);
        RegistryOrigin origin = new RegistryOrigin(remote, new ChunkDecoder(blob.footer().format()), store.scheduler());
        return new Opened(new LayerReader(dev.starling.registry.Digest.parse(blobDigest), blob, remote.size(), origin, store), store);
    }

    private static byte[] readFile(Opened o, String name) throws IOException {
        var file = o.index().lookup(name);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < file.chunkCount(); i++) {
            out.writeBytes(o.reader().read(o.index().chunk(file, i)));
        }
        return out.toByteArray();
    }

    private static long served(ReadCounters c) {
        return c.servedFromMemory() + c.servedFromDisk() + c.servedFromNetwork();
    }

    private static String state(Opened o) {
        return new String(o.reader().stateJson(), StandardCharsets.UTF_8);
    }

    @Test
    void smallFilesArriveManyPerRangeRequest() throws Exception {
        long unit = 256 << 10;
        try (Opened coalesced = open(FOREGROUND_ONLY.withFetchUnit(unit));
             Opened oneByOne = open(FOREGROUND_ONLY.withFetchUnit(1))) {
            for (int i = 0; i < SMALL_FILES; i++) {
                String name = String.format("f-%03d", i);
                assertArrayEquals(contents.get(i), readFile(coalesced, name), name);
                assertArrayEquals(contents.get(i), readFile(oneByOne, name), name);
            }
            long payload = coalesced.reader().counters().fetchedBytes();
            assertTrue(payload >= 300 * 1000, "every small file was fetched: " + payload);
            // about a unit's worth a request: the first reads ramp up from 64 KiB, and a span ends at the unit's
            // next multiple (each aligned unit has one owner among peers), so a span may be cut in two
            assertTrue(coalesced.reader().counters().fetchRequests() <= 2 * (payload / unit) + 3,
                    coalesced.reader().counters().fetchRequests() + " requests for " + payload + " bytes in units of " + unit);
            assertEquals(SMALL_FILES, oneByOne.reader().counters().fetchRequests(), "a 1-byte unit fetches each file on its own");
        }
    }

    @Test
    void theNodesTotalsKeepALayersCountsAfterItCloses() throws Exception {
        try (Opened first = open(FOREGROUND_ONLY)) {
            assertArrayEquals(contents.getLast(), readFile(first, "z-big"));
            long fetched = first.reader().counters().fetchedBytes();
            first.reader().close();
            RegistryRangeReader remote = new RegistryRangeReader(client, repo, blobDigest);
            EStargzBlob blob = EStargzBlob.open(remote, tocDigest);
            RegistryOrigin origin = new RegistryOrigin(remote, new ChunkDecoder(blob.footer().format()), first.store().scheduler());
            try (LayerReader again = new LayerReader(dev.starling.registry.Digest.parse(blobDigest), blob, remote.size(), origin,
                    first.store())) {
                assertArrayEquals(contents.getLast(), readFile(new Opened(again, first.store()), "z-big"));
                assertEquals(0, again.counters().fetchedBytes(), "the reopened layer reads the node's tiers: "
                        + new String(again.stateJson(), StandardCharsets.UTF_8));
                ReadCounters node = first.store().totals();
                assertEquals(fetched, node.fetchedBytes(), "the node still counts what the closed layer fetched");
                assertEquals(served(first.reader().counters()) + served(again.counters()), served(node), "and both layers' reads");
                assertEquals(2 * contents.getLast().length, served(node));
            }
        }
    }

    @Test
    void aChunkReadWholeIsCopiedFromItsFileAfterwardsWithTheSameBytes() throws Exception {
        try (Opened o = open(FOREGROUND_ONLY)) {
            Chunk chunk = o.index().chunk(o.index().lookup("z-big"), 0);
            byte[] whole = o.reader().read(chunk, chunk.size()); // fetched, verified, on disk; all of it read
            long requests = o.reader().counters().fetchRequests();
            java.nio.ByteBuffer into = java.nio.ByteBuffer.allocateDirect(1000);
            into.position(10);
            o.reader().read(chunk, 5000, 900, into, new java.util.concurrent.Semaphore(0)); // no network slot: it must be at hand
            assertEquals(910, into.position(), "the buffer moved on past what was copied");
            byte[] copied = new byte[900];
            into.get(10, copied);
            assertArrayEquals(java.util.Arrays.copyOfRange(whole, 5000, 5900), copied);
            assertEquals(requests, o.reader().counters().fetchRequests(), "from the file, not the registry");
            assertTrue(o.reader().counters().servedFromDisk() >= 900, "and counted as the disk tier's");
        }
    }

    @Test
    void concurrentReadersOfOneChunkShareOneFetch() throws Exception {
        try (Opened o = open(FOREGROUND_ONLY)) {
            Chunk chunk = o.index().chunk(o.index().lookup("z-big"), 0);
            CountDownLatch start = new CountDownLatch(1);
            List<CompletableFuture<byte[]>> readers = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                readers.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        start.await();
                        return o.reader().read(chunk);
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }));
            }
            start.countDown();
            for (CompletableFuture<byte[]> r : readers) {
                assertArrayEquals(contents.getLast(), r.get());
            }
            assertEquals(1, o.reader().counters().fetchRequests(), "eight readers, one Range request");
            assertTrue(state(o).contains("\"fetchRequests\":1,"), "the state file counts it too: " + state(o));
        }
    }

    @Test
    void failedFetchFailsThatReadIsRecordedAndRetried() throws Exception {
        try (Opened o = open(FOREGROUND_ONLY)) {
            assertArrayEquals(contents.get(0), readFile(o, "f-000"));
            registry.stop();
            try {
                assertArrayEquals(contents.get(0), readFile(o, "f-000"), "a cached file still reads");
                IOException failure = assertThrows(IOException.class, () -> readFile(o, "z-big"));
                assertTrue(failure.getMessage().contains(blobDigest), failure.getMessage());
                assertTrue(state(o).contains("\"error\":\"fetching"), "the state file says why: " + state(o));
                assertTrue(state(o).contains("\"failures\":1"), state(o));
            } finally {
                registry.restart();
            }
            assertArrayEquals(contents.getLast(), readFile(o, "z-big"), "the next read tries again and succeeds");
        }
    }

    @Test
    void backgroundFetchMakesTheLayerLocalSoAnOutageDoesNotMatter() throws Exception {
        try (Opened o = open(FetchOptions.DEFAULTS.withBackgroundQuietMillis(0).withBackgroundBytesPerSecond(0))) {
            assertEquals(0, o.reader().localBytes());
            o.reader().startFetching();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!o.reader().backgroundState().equals("done") && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertEquals(o.reader().totalBytes(), o.reader().localBytes(), state(o));
            assertTrue(state(o).contains("\"fetchedPercent\":100.0"), state(o));
            assertEquals("none", o.reader().prefetchState(), "no landmark, nothing to prefetch");
            registry.stop();
            try {
                for (int i = 0; i < SMALL_FILES; i++) {
                    assertArrayEquals(contents.get(i), readFile(o, String.format("f-%03d", i)));
                }
                assertArrayEquals(contents.getLast(), readFile(o, "z-big"));
                assertFalse(state(o).contains("\"error\""), "nothing needed the registry: " + state(o));
            } finally {
                registry.restart();
            }
        }
    }

    @Test
    void backgroundWaitsWhileForegroundFetchesAndKeepsToItsRate() throws Exception {
        try (FetchScheduler scheduler = new FetchScheduler(FetchOptions.DEFAULTS.withBackgroundQuietMillis(100)
                .withBackgroundBytesPerSecond(1 << 20))) {
            Thread.sleep(150); // past the quiet period of the scheduler's start
            CompletableFuture<Boolean> turn;
            try (var foreground = scheduler.foreground()) {
                turn = CompletableFuture.supplyAsync(() -> {
                    try {
                        return scheduler.awaitBackgroundTurn(1 << 20);
                    } catch (InterruptedException e) {
                        throw new RuntimeException(e);
                    }
                });
                Thread.sleep(400);
                assertFalse(turn.isDone(), "background waits while a foreground fetch runs");
            }
            assertTrue(turn.get(5, TimeUnit.SECONDS), "and goes once the foreground has been quiet");
            long t0 = System.nanoTime();
            assertTrue(scheduler.awaitBackgroundTurn(1 << 20));
            long waitedMillis = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(waitedMillis >= 800, "1 MiB at 1 MiB/s: the next turn waits about a second, waited " + waitedMillis);
        }
    }
}
