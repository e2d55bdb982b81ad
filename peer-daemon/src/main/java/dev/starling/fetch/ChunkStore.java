package dev.starling.fetch;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The node's chunks, one per process however many images, layers and front ends use them: the
 * memory tier, the disk tier, the fetch scheduler, and one single-flight map keyed by
 * {@link ChunkKey}, so two readers of a chunk (two mounts of one layer, the kernel's parallel
 * requests for pieces of one chunk, read-ahead and a reader) wait for one load or fetch. Layers
 * read through it with a {@link LayerReader} each.
 */
public final class ChunkStore implements AutoCloseable {
    /**
     * The memory tier's default bound. Chunks leave it once read (the page cache has them then), so
     * it holds read-ahead windows and partly read chunks: 48 MiB is a full 32 MiB window and more,
     * within the launcher's 128 MiB heap (bin/starling).
     */
    public static final long DEFAULT_MEMORY_BYTES = 48L << 20;

    final MemoryChunkCache memory;
    final DiskChunkCache disk;
    final FetchScheduler scheduler;
    /** Chunks being loaded or fetched now, node-wide; the future completes when the bytes are verified. */
    final ConcurrentHashMap<ChunkKey, CompletableFuture<byte[]>> inflight = new ConcurrentHashMap<>();
    /** Every layer's counts since the node started, closed layers' included. */
    final ReadCounters totals = new ReadCounters();

    public ChunkStore(DiskChunkCache disk, long memoryBytes, FetchOptions options) {
        this.memory = new MemoryChunkCache(memoryBytes);
        this.disk = disk;
        this.scheduler = new FetchScheduler(options);
    }

    /** What the node's reads took and fetches cost since it started: counters that never go down. */
    public ReadCounters totals() {
        return totals;
    }

    public FetchOptions options() {
        return scheduler.options();
    }

    public FetchScheduler scheduler() {
        return scheduler;
    }

    public DiskChunkCache disk() {
        return disk;
    }

    /** A chunk this node holds (memory, then disk, verified), or null. */
    public byte[] lookup(ChunkKey key) throws java.io.IOException {
        byte[] data = memory.get(key);
        return data != null ? data : disk.get(key);
    }

    /**
     * The node-wide single flight: the future of whoever is loading or fetching {@code key} now,
     * or, when no one is, {@code mine}, which the caller must then complete and {@link #done}.
     */
    public CompletableFuture<byte[]> claim(ChunkKey key, CompletableFuture<byte[]> mine) {
        CompletableFuture<byte[]> existing = inflight.putIfAbsent(key, mine);
        return existing != null ? existing : mine;
    }

    /** The future of whoever is loading or fetching {@code key} now, or null. */
    public CompletableFuture<byte[]> fetching(ChunkKey key) {
        return inflight.get(key);
    }

    public void done(ChunkKey key, CompletableFuture<byte[]> mine) {
        inflight.remove(key, mine);
    }

    /** Bytes held in the memory tier now. */
    public long memoryBytes() {
        return memory.bytes();
    }

    /** The memory tier's bound. */
    public long memoryMaxBytes() {
        return memory.maxBytes();
    }

    /** Chunks being fetched or loaded now (for status). */
    public int inflight() {
        return inflight.size();
    }

    @Override
    public void close() {
        scheduler.close();
    }
}
