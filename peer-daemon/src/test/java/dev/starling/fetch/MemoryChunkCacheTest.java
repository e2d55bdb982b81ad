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

    @Test
    void aChunkLeavesOnceAllItsBytesWereRead() {
        MemoryChunkCache cache = new MemoryChunkCache(1 << 20);
        cache.put(chunk(1), new byte[1000]);
        cache.put(chunk(2), new byte[1000]);
        cache.consumed(chunk(1), 600);
        assertNotNull(cache.get(chunk(1)), "400 bytes still to be read");
        cache.put(chunk(1), new byte[1000]); // fetched again by a second reader: what was read still counts
        cache.consumed(chunk(1), 400);
        assertNull(cache.get(chunk(1)), "all read: the page cache has it now");
        assertNotNull(cache.get(chunk(2)), "the unread chunk stays");
        assertEquals(1000, cache.bytes());
        cache.consumed(chunk(3), 100); // not held: nothing to do
        assertEquals(1000, cache.bytes());
    }
}
