package dev.starling.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.Processes;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.tar.TarHeader;
import dev.starling.estargz.tar.TarWriter;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.Converter;
import dev.starling.registry.Digest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The disk tier on a real file system, a restart, a bound, a damaged file and a really full disk. */
class DiskChunkCacheTest {
    @TempDir
    Path dir;

    private static final AtomicInteger LAYERS = new AtomicInteger();

    /** A real chunk: {@code data} as the only file of a converted layer, read back through its index. */
    static Chunk chunkOf(byte[] data) throws java.io.IOException {
        Path work = Files.createTempDirectory("starling-chunk-");
        try {
            Path tar = work.resolve("layer.tar");
            String name = "file-" + LAYERS.incrementAndGet();
            try (var out = Files.newOutputStream(tar); var writer = new TarWriter(out)) {
                writer.add(TarHeader.regularFile(name, data.length), data);
            }
            Path blob = work.resolve("layer.esgz");
            String toc = Converter.convert(tar, blob, ConvertOptions.defaults()).tocDigest();
            TocIndex index = EStargzBlob.open(RangeReader.of(Files.readAllBytes(blob)), toc).index();
            return index.chunk(index.lookup(name), 0);
        } finally {
            for (String name : new String[] {"layer.tar", "layer.esgz"}) {
                Files.deleteIfExists(work.resolve(name));
            }
            Files.delete(work);
        }
    }

    static byte[] random(int seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** The slower tier, counting loads, serving by digest from a table of known chunks. */
    static final class Origin implements ChunkSource {
        final java.util.Map<String, byte[]> known = new java.util.HashMap<>();
        final AtomicInteger loads = new AtomicInteger();

        Chunk add(byte[] data) throws java.io.IOException {
            Chunk c = chunkOf(data);
            known.put(HexFormat.of().formatHex(c.digest()), data);
            return c;
        }

        @Override
        public byte[] read(Chunk chunk) {
            loads.incrementAndGet();
            return known.get(HexFormat.of().formatHex(chunk.digest())).clone();
        }
    }

    /** The blob the test chunks are filed under. */
    static final Digest BLOB = Digest.parse("sha256:" + "ab".repeat(32));

    static ChunkKey key(Chunk c) throws java.io.IOException {
        return ChunkKey.of(BLOB, c);
    }

    static byte[] get(DiskChunkCache cache, Chunk c) throws java.io.IOException {
        return cache.get(key(c), c);
    }

    /** Get, or load from {@code origin} and store: what a layer's read path does. */
    static byte[] read(DiskChunkCache cache, Chunk c, ChunkSource origin) throws java.io.IOException {
        byte[] data = get(cache, c);
        if (data == null) {
            data = origin.read(c);
            cache.put(key(c), data);
        }
        return data;
    }

    @Test
    void aChunkServesOnlyTheBlobThatHoldsIt() throws Exception {
        // Another image's TOC may name the digest of a private file's chunk: it must not get those bytes.
        Origin origin = new Origin();
        byte[] secret = random(5, 10_000);
        Chunk c = origin.add(secret);
        DiskChunkCache cache = new DiskChunkCache(dir, 10 << 20);
        read(cache, c, origin);
        Digest other = Digest.parse("sha256:" + "cd".repeat(32));
        assertEquals(null, cache.get(ChunkKey.of(other, c), c), "a chunk of one blob is never a hit for another");
        assertTrue(!cache.contains(ChunkKey.of(other, c)));
        assertArrayEquals(secret, get(cache, c), "the blob that holds it still has it");
    }

    @Test
    void aMountedLayersChunkEvictedAllTheSameIsNoLongerHeldAndTooSmallABoundIsReported() throws Exception {
        Path work = Files.createDirectories(dir.resolve("layer"));
        Path tree = Files.createDirectories(work.resolve("tree"));
        for (int i = 0; i < 3; i++) {
            Files.write(tree.resolve("f-" + i), random(90 + i, 400_000));
        }
        var layer = dev.starling.mount.EStargzImages.convert(tree, work.resolve("layer.esgz"), ConvertOptions.defaults());
        TocIndex index = EStargzBlob.open(RangeReader.of(Files.readAllBytes(layer.blob())), layer.tocDigest()).index();
        DiskChunkCache cache = new DiskChunkCache(dir.resolve("cache"), 1_000_000);
        try (var retained = cache.retain(BLOB, index)) {
            assertTrue(!cache.canHoldMountedLayers(), "1.2 MB of mounted chunks do not fit in 1 MB");
            for (int i = 0; i < 3; i++) {
                cache.put(key(index.chunk(index.lookup("f-" + i), 0)), random(90 + i, 400_000));
            }
            assertTrue(!cache.contains(key(index.chunk(index.lookup("f-0"), 0))), "the eldest went");
            assertEquals(null, get(cache, index.chunk(index.lookup("f-0"), 0)));
            assertTrue(cache.contains(key(index.chunk(index.lookup("f-2"), 0))));
        }
        DiskChunkCache large = new DiskChunkCache(dir.resolve("large"), 10 << 20);
        try (var retained = large.retain(BLOB, index)) {
            assertTrue(large.canHoldMountedLayers());
        }
    }

    @Test
    void theDefaultBoundIsHalfWhatTheDiskHasRoomFor() throws Exception {
        long usable = Files.getFileStore(dir).getUsableSpace();
        long size = DiskChunkCache.defaultSize(dir.resolve("not-yet-made/chunks"));
        assertTrue(size > usable * 0.45 && size < usable * 0.55, size + " of " + usable + " usable bytes");
    }

    @Test
    void filesOfTheOldLayoutAreDroppedAtStart() throws Exception {
        Path old = Files.createDirectories(dir.resolve("ab"));
        Files.write(old.resolve("ab".repeat(32)), new byte[10]);
        DiskChunkCache cache = new DiskChunkCache(dir, 10 << 20);
        assertEquals(0, cache.chunks());
        assertTrue(!Files.exists(old.resolve("ab".repeat(32))), "a chunk keyed by digest alone names no blob");
    }

    @Test
    void chunksSurviveARestartAndAreLoadedOnce() throws Exception {
        Origin origin = new Origin();
        Chunk a = origin.add(random(1, 100_000));
        DiskChunkCache cache = new DiskChunkCache(dir, 10 << 20);
        assertArrayEquals(origin.known.values().iterator().next(), read(cache, a, origin));
        read(cache, a, origin);
        assertEquals(1, origin.loads.get());
        DiskChunkCache restarted = new DiskChunkCache(dir, 10 << 20);
        assertEquals(1, restarted.chunks());
        read(restarted, a, origin);
        assertEquals(1, origin.loads.get(), "served from disk after the restart");
        assertEquals(1, restarted.hits());
    }

    @Test
    void boundIsKeptByEvictingTheLeastRecentlyUsed() throws Exception {
        Origin origin = new Origin();
        Chunk[] chunks = new Chunk[6];
        for (int i = 0; i < chunks.length; i++) {
            chunks[i] = origin.add(random(10 + i, 400_000));
        }
        DiskChunkCache cache = new DiskChunkCache(dir, 1_000_000);
        read(cache, chunks[0], origin);
        read(cache, chunks[1], origin);
        read(cache, chunks[0], origin); // 0 is now more recent than 1
        read(cache, chunks[2], origin); // over the bound: 1 goes
        assertTrue(cache.bytes() <= 1_000_000);
        int before = origin.loads.get();
        read(cache, chunks[0], origin);
        assertEquals(before, origin.loads.get(), "the recently used chunk stayed");
        read(cache, chunks[1], origin);
        assertEquals(before + 1, origin.loads.get(), "the least recently used chunk was evicted");
    }

    @Test
    void chunksOfMountedLayersAreEvictedLast() throws Exception {
        Path work = Files.createDirectories(dir.resolve("layer"));
        Path tree = Files.createDirectories(work.resolve("tree"));
        for (int i = 0; i < 3; i++) {
            Files.write(tree.resolve("mounted-" + i), random(40 + i, 300_000));
        }
        var layer = dev.starling.mount.EStargzImages.convert(tree, work.resolve("layer.esgz"), ConvertOptions.defaults());
        TocIndex index = EStargzBlob.open(RangeReader.of(Files.readAllBytes(layer.blob())), layer.tocDigest()).index();
        DiskChunkCache cache = new DiskChunkCache(dir.resolve("cache"), 1_000_000);
        for (int i = 0; i < 3; i++) {
            Chunk c = index.chunk(index.lookup("mounted-" + i), 0);
            cache.put(key(c), random(40 + i, 300_000));
        }
        try (var retained = cache.retain(BLOB, index)) {
            Origin origin = new Origin();
            for (int i = 0; i < 3; i++) {
                read(cache, origin.add(random(60 + i, 300_000)), origin); // newer, but of no mounted layer
            }
            assertTrue(cache.bytes() <= 1_000_000);
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(random(40 + i, 300_000), get(cache, index.chunk(index.lookup("mounted-" + i), 0)),
                        "the mounted layer's chunk " + i + " stayed although it is the least recently used");
            }
        }
        Origin later = new Origin();
        for (int i = 0; i < 3; i++) {
            read(cache, later.add(random(80 + i, 300_000)), later);
        }
        assertEquals(null, get(cache, index.chunk(index.lookup("mounted-0"), 0)), "unmounted, its chunks go like any other");
    }

    @Test
    void aFileDamagedWhileTheDaemonWasDownIsDetectedAndFetchedAgain() throws Exception {
        Origin origin = new Origin();
        byte[] data = random(3, 50_000);
        Chunk c = origin.add(data);
        read(new DiskChunkCache(dir, 10 << 20), c, origin);
        String hex = HexFormat.of().formatHex(c.digest());
        Path file = dir.resolve(BLOB.hex()).resolve(hex);
        byte[] onDisk = Files.readAllBytes(file);
        onDisk[100] ^= 1;
        Files.write(file, onDisk);
        DiskChunkCache cache = new DiskChunkCache(dir, 10 << 20);
        assertArrayEquals(data, read(cache, c, origin), "never the damaged bytes");
        assertEquals(2, origin.loads.get());
        assertArrayEquals(data, Files.readAllBytes(file), "the good bytes were written back");
    }

    @Test
    void aChunkVerifiedBeforeIsReadWithoutHashingButATruncatedOneIsStillCaught() throws Exception {
        Origin origin = new Origin();
        byte[] data = random(4, 50_000);
        Chunk c = origin.add(data);
        DiskChunkCache cache = new DiskChunkCache(dir, 10 << 20);
        cache.put(key(c), data);
        Path file = dir.resolve(BLOB.hex()).resolve(HexFormat.of().formatHex(c.digest()));
        byte[] flipped = data.clone();
        flipped[7] ^= 1;
        Files.write(file, flipped);
        assertArrayEquals(flipped, cache.get(key(c), c), "written from verified bytes by this process: not hashed again");
        Files.write(file, java.util.Arrays.copyOf(data, 40_000));
        assertEquals(null, cache.get(key(c), c), "a file of another length is refused and dropped");
        assertEquals(false, cache.contains(key(c)));
        cache.put(key(c), data);
        Files.write(file, flipped);
        DiskChunkCache restarted = new DiskChunkCache(dir, 10 << 20);
        assertEquals(null, restarted.get(key(c), c), "after a restart, the first load hashes the bytes");
        assertEquals(1, restarted.verificationFailures());
        Files.write(file, data);
        restarted.put(key(c), data);
        java.nio.ByteBuffer into = java.nio.ByteBuffer.allocate(100);
        assertTrue(restarted.copyIfVerified(key(c), c, 10, 100, into));
        assertArrayEquals(java.util.Arrays.copyOfRange(data, 10, 110), into.array());
    }

    @Test
    void fullDiskStillServesReads() throws Exception {
        Path small = Files.createDirectories(dir.resolve("tiny"));
        Processes.run(dir, "mount", "-t", "tmpfs", "-o", "size=256k", "starling-test", small.toString());
        try {
            Origin origin = new Origin();
            DiskChunkCache cache = new DiskChunkCache(small.resolve("cache"), 100L << 20);
            for (int i = 0; i < 5; i++) {
                byte[] data = random(20 + i, 100_000);
                assertArrayEquals(data, read(cache, origin.add(data), origin), "chunk " + i + " served");
            }
            assertTrue(cache.writeFailures() > 0, "the 256 KiB disk filled up");
            try (var left = Files.walk(small)) {
                assertEquals(0, left.filter(p -> p.getFileName().toString().startsWith(".tmp-")).count(),
                        "no half-written files left behind");
            }
        } finally {
            Processes.run(dir, "umount", small.toString());
        }
    }
}
