package dev.starling.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** The memory tier keeps what was put last (read-ahead puts chunks just before they are read). */
class MemoryChunkCacheTest {
    private static ChunkKey chunk(int n) {
        return new ChunkKey(DiskChunkCacheTest.BLOB, ByteBuffer.allocate(32).putInt(n).array());
    }

    @Test
    void aSequentialScanKeepsEveryRecentChunk() {
        MemoryChunkCache cache = new MemoryChunkCache(256L << 20);
        for (int i = 0; i < 1000; i++) {
            cache.put(chunk(i), new byte[4 << 20]);
            for (int back = 0; back < 32 && back <= i; back++) {
                assertNotNull(cache.get(chunk(i - back)), "chunk " + (i - back) + " put " + back + " puts ago");
            }
        }
        assertNull(cache.get(chunk(0)), "the oldest went first");
        assertEquals(64, cache.bytes() / (4 << 20), "bounded in bytes");
    }

    @Test
    void aReadChunkOutlivesOlderUnreadOnes() {
        MemoryChunkCache cache = new MemoryChunkCache(3 * 100);
        cache.put(chunk(1), new byte[100]);
        cache.put(chunk(2), new byte[100]);
        cache.put(chunk(3), new byte[100]);
        cache.get(chunk(1));
        cache.put(chunk(4), new byte[100]);
        assertNotNull(cache.get(chunk(1)), "recently read");
        assertNull(cache.get(chunk(2)), "least recently used");
    }
}
