package dev.starling.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.write.ConvertOptions;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The background fetch's policy on a fake clock: pauses that double while the registry is down, and bad bytes given up. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LayerFetcherTest {
    /** No quiet time, no rate cap: the clock's only sleeps are the fetcher's own pauses. */
    static final FetchOptions BACKGROUND = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false)
            .withBackgroundQuietMillis(0).withBackgroundBytesPerSecond(0);
    @TempDir
    static Path work;
    static TestLayer.Converted converted;
    static byte[] blob;

    @TempDir
    Path dir;

    @BeforeAll
    static void convert() throws Exception {
        converted = TestLayer.convert(work, 50, ConvertOptions.defaults());
        blob = converted.blob();
    }

    private TestLayer layer(byte[] bytes) throws Exception {
        return new TestLayer(dir, converted, bytes, BACKGROUND);
    }

    @Test
    void anOutageIsWaitedOutWithDoublingPausesAndTheLayerEndsWhole() throws Exception {
        try (TestLayer l = layer(blob)) {
            l.blob.failNext(8);
            new LayerFetcher(l.reader, l.store.scheduler()).fetchRemaining();
            long s = TimeUnit.SECONDS.toNanos(1);
            assertEquals(List.of(s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s), l.clock.sleeps,
                    "1 s doubling to the 1 min cap, one pause per failed request");
            assertEquals(l.reader.totalBytes(), l.reader.localBytes());
            assertTrue(l.reader.stateJson().length > 0);
        }
    }

    @Test
    void aChunkWhoseBytesInTheBlobAreBadIsGivenUpNotRetried() throws Exception {
        byte[] damaged = blob.clone();
        try (TestLayer probe = layer(blob)) {
            Chunk victim = probe.chunk("f-020", 0);
            damaged[(int) (victim.compressedOffset() + victim.compressedLength() / 2)] ^= 0x5a;
        }
        // the blob's digest is what the registry would serve for these bytes; the TOC is unchanged
        try (TestLayer l = layer(damaged)) {
            LayerFetcher fetcher = new LayerFetcher(l.reader, l.store.scheduler());
            fetcher.fetchRemaining();
            assertEquals("done", fetcher.backgroundState());
            assertEquals(List.of(), l.clock.sleeps, "bad bytes are not an outage: no pause, no retry loop");
            Chunk victim = l.chunk("f-020", 0);
            assertTrue(!l.reader.isLocal(victim));
            assertEquals(l.reader.totalBytes() - victim.size(), l.reader.localBytes(), "everything else is here");
            assertTrue(l.reader.counters().failures() >= 1);
        }
    }

    @Test
    void aPassThatFetchedSomethingIsFollowedByOneThatChecksNothingWentMissing() throws Exception {
        try (TestLayer l = layer(blob)) {
            LayerFetcher fetcher = new LayerFetcher(l.reader, l.store.scheduler());
            fetcher.fetchRemaining();
            int requests = l.blob.requests.get();
            fetcher.fetchRemaining();
            assertEquals(requests, l.blob.requests.get(), "a layer held whole costs no request");
            assertEquals("done", fetcher.backgroundState());
        }
    }
}
