package dev.starling.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.write.ConvertOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node's read line on a fault-injecting blob: one fetch however many wait, a failure that
 * reaches every waiter and is fetched again on the next read, and a plan that cannot strand a waiter.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ChunkStoreTest {
    static final FetchOptions FOREGROUND = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false);
    @TempDir
    static Path work;
    static TestLayer.Converted converted;

    @TempDir
    Path dir;

    @BeforeAll
    static void convert() throws Exception {
        converted = TestLayer.convert(work, 200, ConvertOptions.defaults());
    }

    private TestLayer layer() throws IOException {
        return new TestLayer(dir, converted, converted.blob(), FOREGROUND);
    }

    @Test
    void readersOfOneChunkWaitForOneFetch() throws Exception {
        try (TestLayer l = layer()) {
            Chunk big = l.chunk("z-big", 1);
            var gate = l.blob.hold();
            List<CompletableFuture<byte[]>> readers = new ArrayList<>();
            java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newFixedThreadPool(8);
            for (int i = 0; i < 8; i++) {
                readers.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        return l.reader.read(big);
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }, threads));
            }
            assertTrue(l.blob.arrived.await(10, TimeUnit.SECONDS));
            ChunkKey key = ChunkKey.of(l.digest, big);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (l.store.fetching(key).getNumberOfDependents() < readers.size() - 1) { // the others wait on the owner's fetch
                assertTrue(System.nanoTime() < deadline, "the other readers never came to wait on the fetch");
                Thread.onSpinWait();
            }
            gate.countDown();
            byte[] first = readers.getFirst().get();
            for (CompletableFuture<byte[]> r : readers) {
                assertArrayEquals(first, r.get());
            }
            assertEquals(1, l.blob.requests.get(), "eight readers, one Range request");
            assertEquals(4 << 20, first.length);
            threads.shutdown();
        }
    }

    @Test
    void aFailedFetchFailsItsReadIsKeptAsTheErrorAndTheNextReadFetchesAgain() throws Exception {
        try (TestLayer l = layer()) {
            Chunk small = l.chunk("f-010", 0);
            l.blob.failNext(1);
            IOException failed = assertThrows(IOException.class, () -> l.reader.read(small));
            assertTrue(failed.getMessage().contains("of layer " + l.digest) && failed.getMessage().contains("503"),
                    failed.getMessage());
            assertTrue(l.reader.lastError().contains("503"), l.reader.lastError());
            assertEquals(1, l.reader.counters().failures());
            byte[] data = l.reader.read(small);
            assertEquals(small.size(), data.length);
            assertEquals(1, l.blob.requests.get(), "fetched again, once");
            assertEquals(0, l.store.inflight(), "no claim outlives its load");
        }
    }

    @Test
    void smallFilesAfterTheChunkReadComeInTheSameRequestAndAreThenLocal() throws Exception {
        try (TestLayer l = layer()) {
            for (int i = 0; i < 40; i++) {
                l.reader.read(l.chunk(String.format("f-%03d", i), 0));
            }
            int requests = l.blob.requests.get();
            assertTrue(requests < 10, "40 small files in " + requests + " requests");
            assertTrue(l.reader.isLocal(l.chunk("f-039", 0)), "a fetched chunk is on disk, as the disk tier says");
            assertEquals(l.reader.state().localBytes(), l.reader.localBytes());
        }
    }

    @Test
    void aPlanThatLeavesOutANeededChunkFailsItInsteadOfStrandingItsWaiter() throws Exception {
        try (TestLayer l = layer()) {
            Chunk small = l.chunk("f-100", 0);
            ChunkStore.Fetch forgetful = new ChunkStore.Fetch() {
                @Override
                public List<Chunk> span(List<Chunk> needed, Predicate<Chunk> wanted) {
                    return List.of();
                }

                @Override
                public Origin origin() {
                    return chunks -> new Origin.Span(List.of(), 0, 0);
                }
            };
            CompletableFuture<byte[]> load = l.store.load(l.digest, List.of(small), forgetful).getFirst();
            ExecutionException e = assertThrows(ExecutionException.class, () -> load.get(5, TimeUnit.SECONDS));
            assertTrue(e.getCause().getMessage().contains("not in the span"), e.getCause().getMessage());
            assertEquals(0, l.store.inflight());
        }
    }

    @Test
    void aChunkHeldOnDiskIsLoadedNotFetched() throws Exception {
        try (TestLayer l = layer()) {
            Chunk big = l.chunk("z-big", 0);
            byte[] fetched = l.reader.read(big);
            l.reader.read(big, big.size()); // consumed whole: it leaves the memory tier
            int requests = l.blob.requests.get();
            java.nio.ByteBuffer into = java.nio.ByteBuffer.allocate(1000);
            l.reader.read(big, 5000, 1000, into, new java.util.concurrent.Semaphore(0)); // no network slot: it must be at hand
            assertArrayEquals(java.util.Arrays.copyOfRange(fetched, 5000, 6000), into.array());
            assertThrows(dev.starling.estargz.ChunkSource.NoNetworkSlotException.class, () -> l.reader.read(l.chunk("f-150", 0),
                    0, 10, java.nio.ByteBuffer.allocate(10), new java.util.concurrent.Semaphore(0)), "a chunk not at hand needs a slot");
            assertArrayEquals(fetched, l.reader.read(big, big.size()));
            assertEquals(requests, l.blob.requests.get(), "the disk tier answered");
        }
    }
}
