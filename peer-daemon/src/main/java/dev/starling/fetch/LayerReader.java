package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.VerificationException;
import dev.starling.registry.Digest;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The read path of one open layer, a straight line: {@link #read} asks the node's
 * {@link ChunkStore} (memory, disk, the single flight) and, for what the node does not hold, gives it
 * the layer's span plan ({@link SpanPlan}, up to {@link FetchOptions#fetchUnit}) and its
 * {@link Origin}. Every chunk is verified before it is cached or returned. A failed fetch or
 * verification fails the reads that needed it, is logged and kept as the layer's last error, and is
 * tried again on the next read. Read-ahead goes the same way on the scheduler's threads; the
 * prefetch of the prioritized area and the background fetch of the rest are {@link LayerFetcher}'s.
 */
public final class LayerReader implements ChunkSource, Closeable {
    private static final Logger LOG = Logger.getLogger(LayerReader.class.getName());
    static final long FIRST_UNIT = 64L << 10;
    private static final long BURST_NANOS = 1_000_000_000L;

    private final Digest digest;
    private final long blobSize;
    private final TocIndex index;
    private final Origin origin;
    private final ChunkStore store;
    private final FetchOptions options;
    private final ReadCounters counters;
    private final Closeable retention;
    private final LayerFetcher fetcher;
    private final long totalBytes;
    /** Chunks queued on the read-ahead threads and not yet done. */
    private final Set<Integer> queuedAhead = ConcurrentHashMap.newKeySet();
    /** The foreground unit now, and when the last foreground fetch was planned (0: never); guarded by this. */
    private long foregroundUnit;
    private long lastForegroundFetch;
    private volatile String lastError;
    private volatile Instant lastErrorAt;
    private volatile boolean closed;

    /**
     * @param digest   the layer blob's digest: part of every chunk's key, and named in the state and messages
     * @param blob     the layer's TOC, already verified against the manifest
     * @param blobSize the blob's size, as its source reports it
     * @param origin   where chunks the node does not hold come from
     */
    public LayerReader(Digest digest, EStargzBlob blob, long blobSize, Origin origin, ChunkStore store) throws IOException {
        this.digest = digest;
        this.blobSize = blobSize;
        this.index = blob.index();
        this.origin = origin;
        this.store = store;
        this.options = store.options();
        this.counters = new ReadCounters(store.totals());
        long total = 0;
        for (int i = 0; i < index.chunkTotal(); i++) {
            Chunk c = index.chunkAt(i);
            total += c == null ? 0 : c.size();
        }
        this.totalBytes = total;
        this.retention = store.disk().retain(digest, index);
        this.fetcher = new LayerFetcher(this, store.scheduler());
    }

    public TocIndex index() {
        return index;
    }

    Digest digest() {
        return digest;
    }

    ChunkStore store() {
        return store;
    }

    Origin origin() {
        return origin;
    }

    FetchOptions options() {
        return options;
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public byte[] read(Chunk chunk) throws IOException {
        return read(chunk, chunk.size());
    }

    /** The chunk's bytes, {@code bytesUsed} of them counted as served by the tier that answered. */
    public byte[] read(Chunk chunk, long bytesUsed) throws IOException {
        long t0 = System.nanoTime();
        ChunkKey key = ChunkKey.of(digest, chunk);
        byte[] data = store.fromMemory(key, bytesUsed);
        if (data != null) {
            counters.served(ReadSource.MEMORY, bytesUsed, System.nanoTime() - t0);
            return data;
        }
        // through the store's load even when the chunk is on disk: the kernel asks for a chunk's 1 MiB
        // pieces at once, and one of them should load and verify it, not each
        boolean local = store.isLocal(key);
        try (Closeable ignored = store.scheduler().foreground()) {
            data = load(chunk, foregroundUnit(t0), Long.MAX_VALUE, true);
        }
        counters.served(local ? ReadSource.DISK : ReadSource.NETWORK, bytesUsed, System.nanoTime() - t0);
        store.consumed(key, bytesUsed);
        return data;
    }

    /**
     * How far a read's fetch may reach past its own chunk into missing neighbours: 64 KiB for the
     * first read after a quiet second (a container's first file: its bytes and latency are what it
     * waits for, the reference's unit is 50,000 bytes), doubling with each read that follows within
     * the second, up to the fetch unit: a burst of small-file reads (a start-up scanning a package
     * tree) soon fetches them many to a request.
     */
    private synchronized long foregroundUnit(long now) {
        boolean burst = lastForegroundFetch != 0 && now - lastForegroundFetch < BURST_NANOS;
        foregroundUnit = burst ? Math.min(options.fetchUnit(), foregroundUnit * 2) : Math.min(options.fetchUnit(), FIRST_UNIT);
        lastForegroundFetch = now;
        return foregroundUnit;
    }

    /** Where a read's chunk came from, for the read-latency metrics. */
    public enum ReadSource { MEMORY, DISK, NETWORK }

    /** What this layer's reads took and its fetches cost, since it opened (the node's totals are {@link ChunkStore#totals()}). */
    public ReadCounters counters() {
        return counters;
    }

    /**
     * One FUSE read's piece of a chunk, wherever it is: from the memory tier; else, for a chunk the
     * disk tier verified in this process, straight from its file into FUSE's buffer, neither loaded
     * whole onto the heap nor kept in memory (the page cache keeps what is read); else loaded from
     * disk or fetched, a fetch holding one of {@code networkSlots} while it waits.
     */
    @Override
    public void read(Chunk chunk, int offset, int length, ByteBuffer into, Semaphore networkSlots) throws IOException {
        long t0 = System.nanoTime();
        ChunkKey key = ChunkKey.of(digest, chunk);
        byte[] data = store.fromMemory(key, length);
        if (data != null) {
            counters.served(ReadSource.MEMORY, length, System.nanoTime() - t0);
        } else if (store.copyIfVerified(key, chunk, offset, length, into)) {
            counters.served(ReadSource.DISK, length, System.nanoTime() - t0);
            return;
        } else if (store.isLocal(key)) {
            data = read(chunk, length);
        } else {
            if (!networkSlots.tryAcquire()) {
                throw new NoNetworkSlotException();
            }
            try {
                data = read(chunk, length);
            } finally {
                networkSlots.release();
            }
        }
        into.put(data, offset, length);
    }

    /**
     * Brings each upcoming chunk into the memory tier on the read-ahead threads (fetched when it is
     * not local). Each chunk is queued once, however often it is hinted, so the threads work on
     * different chunks rather than all waiting on the same one.
     */
    @Override
    public void readAhead(List<Chunk> upcoming) {
        for (Chunk c : upcoming) {
            ChunkKey key;
            try {
                key = ChunkKey.of(digest, c);
            } catch (VerificationException e) {
                continue; // a read of it fails with the reason
            }
            // a chunk on disk is not brought in: FUSE reads copy it from its file
            if (store.isComing(key) || store.isLocal(key) || !queuedAhead.add(c.index())) {
                continue;
            }
            store.scheduler().readAhead(() -> {
                try (Closeable ignored = store.scheduler().foreground()) {
                    if (!closed && !store.isComing(key)) {
                        load(c, options.fetchUnit(), Long.MAX_VALUE, true);
                    }
                } catch (IOException failed) {
                    // recorded by the load; the reader's own read tries again
                } finally {
                    queuedAhead.remove(c.index());
                }
            });
        }
    }

    /**
     * The bytes of {@code chunk}: held, loaded by whoever loads it now, or fetched here together with
     * the missing chunks after it that start before {@code stopAt} while the request stays within
     * {@code unit} bytes.
     */
    byte[] load(Chunk chunk, long unit, long stopAt, boolean keepInMemory) throws IOException {
        return store.load(digest, chunk, new LayerSpanFetch(this, unit, stopAt, keepInMemory));
    }

    /** Counts, logs and keeps a failure as the layer's last error. */
    IOException failure(IOException e) {
        counters.failed(e instanceof VerificationException || e.getCause() instanceof VerificationException);
        lastError = e.getMessage();
        lastErrorAt = Instant.now();
        LOG.log(Level.WARNING, e.getMessage());
        return e;
    }

    /** Whether the node holds the chunk on disk. */
    boolean isLocal(Chunk c) {
        return c.digest() != null && store.isLocal(ChunkKey.of(digest, c.digest()));
    }

    /** Starts prefetch and background fetch as the options say, on the scheduler's threads. */
    public void startFetching() {
        fetcher.start();
    }

    /** Bytes of the layer's files this node holds, out of {@link #totalBytes()}. */
    public long localBytes() {
        return state().localBytes();
    }

    public long totalBytes() {
        return totalBytes;
    }

    public String lastError() {
        return lastError;
    }

    public String backgroundState() {
        return fetcher.backgroundState();
    }

    public String prefetchState() {
        return fetcher.prefetchState();
    }

    /** What the layer holds and has cost now; asked of the disk tier, chunk by chunk. */
    public LayerState state() {
        long local = 0;
        long members = 0;
        for (int i = 0; i < index.chunkTotal(); i++) {
            Chunk c = index.chunkAt(i);
            if (c != null && isLocal(c)) {
                local += c.size();
                // a member's compressed length counts for the chunk that starts it, so shared members count once
                members += c.innerOffset() == 0 ? Math.min(c.compressedLength(), c.size() + SpanPlan.STREAM_SLACK) : 0;
            }
        }
        return new LayerState(digest, blobSize, members, local, totalBytes, lastError, lastErrorAt, counters,
                fetcher.prefetchState(), fetcher.backgroundState());
    }

    /** The state file's contents ({@link LayerState}). */
    public byte[] stateJson() {
        return state().json();
    }

    @Override
    public synchronized void close() throws IOException {
        if (!closed) {
            closed = true;
            retention.close();
        }
    }
}
