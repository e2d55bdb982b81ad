package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import java.nio.ByteBuffer;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The memory tier: verified chunks kept by their digest (content-addressed, so a chunk shared by two
 * layers is held once), bounded in bytes, least recently used out first. FUSE reads arrive in
 * 128 KiB-1 MiB pieces of chunks of up to 4 MiB; without this tier each piece would load (or fetch)
 * its whole chunk again.
 *
 * <p>Plain LRU on purpose, not Caffeine's W-TinyLFU: that policy resists scans by refusing new
 * entries that are seen less often than its victim, and a sequential reader is a scan whose chunks
 * are put here by read-ahead just before they are read. Measured with 4 MiB chunks in 256 MiB, it
 * dropped about a quarter of them at once, and each drop cost a second disk load or fetch.
 */
public final class MemoryChunkCache {
    private final long maxBytes;
    private final LinkedHashMap<ByteBuffer, byte[]> chunks = new LinkedHashMap<>(256, 0.75f, true);
    private long bytes;

    public MemoryChunkCache(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** The chunk's bytes, or null. Chunks without a digest are never stored, so never found. */
    public synchronized byte[] get(Chunk chunk) {
        return chunk.digest() == null ? null : chunks.get(ByteBuffer.wrap(chunk.digest()));
    }

    /** Stores bytes already verified against the chunk's digest. */
    public synchronized void put(Chunk chunk, byte[] data) {
        if (chunk.digest() == null || data.length > maxBytes) {
            return;
        }
        byte[] previous = chunks.put(ByteBuffer.wrap(chunk.digest()), data);
        bytes += data.length - (previous == null ? 0 : previous.length);
        Iterator<Map.Entry<ByteBuffer, byte[]>> eldest = chunks.entrySet().iterator();
        while (bytes > maxBytes && eldest.hasNext()) {
            bytes -= eldest.next().getValue().length;
            eldest.remove();
        }
    }

    /** Bytes held now. */
    public synchronized long bytes() {
        return bytes;
    }
}
