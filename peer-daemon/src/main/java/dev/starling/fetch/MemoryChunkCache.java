package dev.starling.fetch;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The memory tier: verified chunks kept by {@link ChunkKey} (blob and chunk digest, so a chunk
 * serves only the layer whose blob holds it), bounded in bytes, least recently used out first. FUSE
 * reads arrive in 128 KiB-1 MiB pieces of chunks of up to 4 MiB; without this tier each piece would
 * load (or fetch) its whole chunk again.
 *
 * <p>Plain LRU on purpose, not Caffeine's W-TinyLFU: that policy resists scans by refusing new
 * entries that are seen less often than its victim, and a sequential reader is a scan whose chunks
 * are put here by read-ahead just before they are read. Measured with 4 MiB chunks in 256 MiB, it
 * dropped about a quarter of them at once, and each drop cost a second disk load or fetch.
 */
public final class MemoryChunkCache {
    private final long maxBytes;
    private final LinkedHashMap<ChunkKey, byte[]> chunks = new LinkedHashMap<>(256, 0.75f, true);
    private long bytes;

    public MemoryChunkCache(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** The chunk's bytes, or null. */
    public synchronized byte[] get(ChunkKey key) {
        return chunks.get(key);
    }

    /** Stores bytes already verified against the key's chunk digest. */
    public synchronized void put(ChunkKey key, byte[] data) {
        if (data.length > maxBytes) {
            return;
        }
        byte[] previous = chunks.put(key, data);
        bytes += data.length - (previous == null ? 0 : previous.length);
        Iterator<Map.Entry<ChunkKey, byte[]>> eldest = chunks.entrySet().iterator();
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
