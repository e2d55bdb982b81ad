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
 * <p>A chunk leaves as soon as FUSE reads have taken all its bytes ({@link #consumed}): the kernel's
 * page cache holds them from then on (layers are mounted {@code kernel_cache}), and a copy here would
 * only double the node's memory for the same bytes. What stays is what is still to be read: chunks
 * read ahead, and chunks a random reader took a part of.
 *
 * <p>Plain LRU on purpose, not Caffeine's W-TinyLFU: that policy resists scans by refusing new
 * entries that are seen less often than its victim, and a sequential reader is a scan whose chunks
 * are put here by read-ahead just before they are read. Measured with 4 MiB chunks in 256 MiB, it
 * dropped about a quarter of them at once, and each drop cost a second disk load or fetch.
 */
final class MemoryChunkCache {
    private final long maxBytes;
    private final LinkedHashMap<ChunkKey, Held> chunks = new LinkedHashMap<>(256, 0.75f, true);
    private long bytes;

    private static final class Held {
        final byte[] data;
        /** Bytes FUSE reads have taken from it. */
        long served;

        Held(byte[] data) {
            this.data = data;
        }
    }

    public MemoryChunkCache(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** The chunk's bytes, or null. */
    public synchronized byte[] get(ChunkKey key) {
        Held h = chunks.get(key);
        return h == null ? null : h.data;
    }

    /** Stores bytes already verified against the key's chunk digest. */
    public synchronized void put(ChunkKey key, byte[] data) {
        if (data.length > maxBytes) {
            return;
        }
        Held previous = chunks.get(key);
        if (previous != null && previous.data.length == data.length) {
            return; // the same verified bytes: keep what was counted as read of them
        }
        chunks.put(key, new Held(data));
        bytes += data.length - (previous == null ? 0 : previous.data.length);
        Iterator<Map.Entry<ChunkKey, Held>> eldest = chunks.entrySet().iterator();
        while (bytes > maxBytes && eldest.hasNext()) {
            bytes -= eldest.next().getValue().data.length;
            eldest.remove();
        }
    }

    /** Counts {@code n} bytes of the chunk as handed to the kernel; once all are, the chunk leaves. */
    public synchronized void consumed(ChunkKey key, long n) {
        Held h = chunks.get(key);
        if (h != null && (h.served += n) >= h.data.length) {
            chunks.remove(key);
            bytes -= h.data.length;
        }
    }

    /** Bytes held now. */
    public synchronized long bytes() {
        return bytes;
    }

    /** The most it holds. */
    public long maxBytes() {
        return maxBytes;
    }
}
