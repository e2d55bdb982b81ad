package dev.starling.fetch;

import dev.starling.concurrent.SingleFlight;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.VerificationException;
import dev.starling.registry.Digest;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Predicate;

/**
 * The node's chunks, one per process however many images, layers and front ends use them: the
 * memory tier, the disk tier, the fetch scheduler, and the node-wide single flight keyed by
 * {@link ChunkKey}, so two readers of a chunk (two mounts of one layer, the kernel's parallel
 * requests for pieces of one chunk, read-ahead and a reader, a peer's request and a reader) wait
 * for one load or fetch. {@link #load} is the whole of it: memory, disk, claim, fetch the span,
 * verify, store, wake the waiters. What is local is asked of the disk tier, never mirrored.
 */
public final class ChunkStore implements AutoCloseable {
    /**
     * The memory tier's default bound. Chunks leave it once read (the page cache has them then), so
     * it holds read-ahead windows and partly read chunks: 48 MiB is a full 32 MiB window and more,
     * within the launcher's 128 MiB heap (bin/starling).
     */
    public static final long DEFAULT_MEMORY_BYTES = 48L << 20;

    private final MemoryChunkCache memory;
    private final DiskChunkCache disk;
    private final FetchScheduler scheduler;
    private final SingleFlight<ChunkKey, byte[]> inflight = new SingleFlight<>();
    /** Every layer's counts since the node started, closed layers' included. */
    private final ReadCounters totals = new ReadCounters();

    public ChunkStore(DiskChunkCache disk, long memoryBytes, FetchOptions options) {
        this(disk, memoryBytes, new FetchScheduler(options));
    }

    ChunkStore(DiskChunkCache disk, long memoryBytes, FetchScheduler scheduler) {
        this.memory = new MemoryChunkCache(memoryBytes);
        this.disk = disk;
        this.scheduler = scheduler;
    }

    /**
     * How {@link #load} fetches chunks the node does not hold: which chunks join them in one request,
     * from where, and what becomes of the bytes. The layer's reader, its background fetch and a
     * peer's fill each bring their own.
     */
    public interface Fetch {
        /**
         * The chunks to fetch, in blob order: every one of {@code needed} and those of the others
         * that {@code wanted} allows (not held, not fetched by someone else) and the caller's policy
         * adds.
         */
        List<Chunk> span(List<Chunk> needed, Predicate<Chunk> wanted);

        /** Where the span comes from. */
        Origin origin();

        /** Whether fetched chunks also go to the memory tier (a reader is about to take them), or only to disk. */
        default boolean keepInMemory() {
            return true;
        }

        /** What a fetch cost, for the caller's counters. */
        default void fetched(Origin.Span span) {
        }

        /** The failure the span's waiters get, after the caller recorded it. */
        default IOException failed(List<Chunk> span, IOException cause) {
            return cause;
        }
    }

    /** A chunk this node holds (memory, then disk, verified), or null. */
    public byte[] held(ChunkKey key) throws IOException {
        byte[] data = memory.get(key);
        return data != null ? data : disk.get(key);
    }

    /** Whether the disk tier holds the chunk: what "local" means for a layer and for a peer's request. */
    public boolean isLocal(ChunkKey key) {
        return disk.contains(key);
    }

    /** The chunk from the memory tier, or null; counts {@code bytesUsed} of it as handed to the kernel. */
    byte[] fromMemory(ChunkKey key, long bytesUsed) {
        byte[] data = memory.get(key);
        if (data != null) {
            memory.consumed(key, bytesUsed);
        }
        return data;
    }

    /** Counts bytes of a chunk loaded through {@link #load} as handed to the kernel. */
    void consumed(ChunkKey key, long bytesUsed) {
        memory.consumed(key, bytesUsed);
    }

    /** Copies part of a chunk the disk tier verified straight from its file; false when it must be loaded. */
    boolean copyIfVerified(ChunkKey key, Chunk chunk, int offset, int length, ByteBuffer into) {
        return disk.copyIfVerified(key, chunk, offset, length, into);
    }

    /** Whether a chunk is in the memory tier or being loaded: read-ahead need not ask for it. */
    boolean isComing(ChunkKey key) {
        return memory.get(key) != null || inflight.running(key) != null;
    }

    /** The future of whoever is loading or fetching {@code key} now, or null. */
    public CompletableFuture<byte[]> fetching(ChunkKey key) {
        return inflight.running(key);
    }

    /** The chunk's verified bytes: held, or loaded by whoever loads it now, or fetched here with its span. */
    public byte[] load(Digest blob, Chunk chunk, Fetch fetch) throws IOException {
        return await(load(blob, List.of(chunk), fetch).getFirst());
    }

    /**
     * The verified bytes of each of {@code needed} (chunks of blob {@code blob}), one future each in
     * order. A chunk in the memory tier is answered at once; one someone is loading is theirs to
     * answer; the rest are claimed, loaded from disk when there, and what is still missing is fetched
     * here, now, in one span that {@code fetch} plans, whose other chunks are claimed too. A chunk of
     * the span that someone else claimed since the plan is left to them (after the last needed chunk,
     * the span ends before it). Waiters wake when their bytes are verified, not after the disk write.
     */
    public List<CompletableFuture<byte[]>> load(Digest blob, List<Chunk> needed, Fetch fetch) {
        List<CompletableFuture<byte[]>> out = new ArrayList<>(needed.size());
        Map<ChunkKey, CompletableFuture<byte[]>> claimed = new HashMap<>();
        List<Chunk> missing = new ArrayList<>();
        for (Chunk chunk : needed) {
            ChunkKey key;
            try {
                key = ChunkKey.of(blob, chunk);
            } catch (VerificationException e) {
                out.add(CompletableFuture.failedFuture(fetch.failed(List.of(chunk), e)));
                continue;
            }
            byte[] data = memory.get(key);
            if (data != null) {
                out.add(CompletableFuture.completedFuture(data));
                continue;
            }
            CompletableFuture<byte[]> mine = claimed.get(key);
            if (mine == null) {
                mine = new CompletableFuture<>();
                CompletableFuture<byte[]> theirs = inflight.claim(key, mine);
                if (theirs != mine) {
                    out.add(theirs);
                    continue;
                }
                claimed.put(key, mine);
                if (!loadHeld(key, chunk, mine, fetch.keepInMemory())) {
                    missing.add(chunk);
                }
            }
            out.add(mine);
        }
        try {
            if (!missing.isEmpty()) {
                fetchSpan(blob, missing, fetch, claimed);
            }
        } finally {
            claimed.forEach((key, mine) -> {
                if (!mine.isDone()) { // a plan that left out a needed chunk: never a waiter waiting forever
                    mine.completeExceptionally(new IOException("chunk " + key + " was not in the span fetched for it"));
                }
                inflight.done(key, mine);
            });
        }
        return out;
    }

    /** Completes a claimed chunk from the tiers (it may have arrived since the caller looked); false when it is not held. */
    private boolean loadHeld(ChunkKey key, Chunk chunk, CompletableFuture<byte[]> mine, boolean keepInMemory) {
        try {
            byte[] data = memory.get(key);
            if (data == null && disk.contains(key)) {
                data = disk.get(key, chunk);
                if (data != null && keepInMemory) {
                    memory.put(key, data);
                }
            }
            if (data == null) {
                return false;
            }
            mine.complete(data);
            return true;
        } catch (IOException | RuntimeException e) {
            return false; // unreadable: fetched like a missing chunk
        }
    }

    private void fetchSpan(Digest blob, List<Chunk> missing, Fetch fetch, Map<ChunkKey, CompletableFuture<byte[]>> claimed) {
        List<Chunk> span = new ArrayList<>();
        List<CompletableFuture<byte[]>> waiters = new ArrayList<>();
        java.util.Set<ChunkKey> inSpan = new java.util.HashSet<>();
        try {
            List<Chunk> planned = fetch.span(missing, c -> {
                if (c.digest() == null) {
                    return false;
                }
                ChunkKey k = ChunkKey.of(blob, c.digest());
                return !claimed.containsKey(k) && inflight.running(k) == null && !disk.contains(k);
            });
            long lastNeeded = missing.getLast().compressedOffset();
            for (Chunk c : planned) {
                ChunkKey key = ChunkKey.of(blob, c);
                CompletableFuture<byte[]> mine = claimed.get(key);
                if (mine == null || mine.isDone() || !inSpan.add(key)) {
                    if (mine != null) {
                        continue; // loaded from disk, or a second chunk of the same bytes (two identical files): fetched once
                    }
                    mine = new CompletableFuture<>();
                    if (inflight.claim(key, mine) != mine) {
                        if (c.compressedOffset() > lastNeeded) {
                            break; // claimed since planning: the span ends before it
                        }
                        continue;
                    }
                    claimed.put(key, mine);
                    inSpan.add(key);
                }
                span.add(c);
                waiters.add(mine);
            }
            Origin.Span got = fetch.origin().fetch(span);
            fetch.fetched(got);
            for (int i = 0; i < span.size(); i++) {
                Origin.Fetched f = got.chunks().get(i);
                if (f.failure() != null) {
                    waiters.get(i).completeExceptionally(fetch.failed(List.of(span.get(i)), f.failure()));
                } else {
                    store(ChunkKey.of(blob, span.get(i)), f.data(), fetch.keepInMemory(), waiters.get(i));
                }
            }
        } catch (IOException | RuntimeException e) {
            IOException failure = fetch.failed(span.isEmpty() ? missing : span,
                    e instanceof IOException io ? io : new IOException(e.toString(), e));
            claimed.values().forEach(f -> f.completeExceptionally(failure));
        }
    }

    /** Verified bytes of a chunk: into the tiers, then to its waiters (who need not wait for the disk write). */
    private void store(ChunkKey key, byte[] data, boolean keepInMemory, CompletableFuture<byte[]> waiters) {
        if (keepInMemory) {
            memory.put(key, data);
        }
        waiters.complete(data);
        disk.put(key, data);
    }

    static byte[] await(CompletableFuture<byte[]> load) throws IOException {
        try {
            return load.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while fetching");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }

    /** What the node's reads took and fetches cost since it started: counters that never go down. */
    public ReadCounters totals() {
        return totals;
    }

    public FetchOptions options() {
        return scheduler.options();
    }

    FetchScheduler scheduler() {
        return scheduler;
    }

    DiskChunkCache disk() {
        return disk;
    }

    /** Bytes held in the memory tier now. */
    public long memoryBytes() {
        return memory.bytes();
    }

    /** The memory tier's bound. */
    public long memoryMaxBytes() {
        return memory.maxBytes();
    }

    /** Bytes held in the disk tier now. */
    public long diskBytes() {
        return disk.bytes();
    }

    /** Chunks read back from disk that did not verify, since start. */
    public long diskVerificationFailures() {
        return disk.verificationFailures();
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
