package dev.starling.fetch;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.InvalidBlobException;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.VerificationException;
import dev.starling.registry.Digest;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The read path of one open layer, a straight line: memory tier, disk tier, then the layer's
 * {@link Origin} (the registry today). Tiers and the single-flight map are the node's
 * ({@link ChunkStore}), keyed by blob and chunk digest, so a chunk is loaded or fetched by one
 * caller at a time node-wide and the others wait for it. A missing chunk is fetched with its
 * missing neighbours in one request of up to {@link FetchOptions#fetchUnit} ({@link SpanPlan}),
 * every chunk is verified before it is cached or returned, and waiters wake when it is verified,
 * not after the disk write. A failed fetch or verification fails the reads that needed it, is
 * logged and kept as the layer's last error, and is tried again on the next read. The same path
 * serves read-ahead, the prefetch of the prioritized area, and the background fetch of the rest.
 */
public final class LayerReader implements ChunkSource, Closeable {
    private static final Logger LOG = Logger.getLogger(LayerReader.class.getName());
    private static final JsonFactory JSON = new JsonFactory();
    /** Prefetch asks for the prioritized area in requests this large: it is wanted whole, and soon. */
    static final long PREFETCH_UNIT = 16L << 20;

    private final Digest digest;
    private final long blobSize;
    private final TocIndex index;
    private final Origin origin;
    private final MemoryChunkCache memory;
    private final DiskChunkCache disk;
    private final FetchScheduler scheduler;
    private final FetchOptions options;
    private final Closeable retention;
    /** The node's single-flight map (one per {@link ChunkStore}), keyed by blob and chunk digest. */
    private final ConcurrentHashMap<ChunkKey, CompletableFuture<byte[]>> inflight;
    /** Chunks queued on the read-ahead threads and not yet done. */
    private final Set<Integer> queuedAhead = ConcurrentHashMap.newKeySet();
    /** Chunks this node holds in the disk tier (as far as it knows: the disk tier may evict them since). */
    private final BitSet local = new BitSet();
    /**
     * Chunks of {@link #local} whose file this open wrote from verified bytes, or already loaded and
     * verified: loaded again, they are not hashed again (the reference never hashes its cache at all).
     * A chunk on disk from before this open, a restart's, is verified the first time it is loaded.
     */
    private final BitSet verifiedOnDisk = new BitSet();
    /** Chunks whose bytes in the blob are bad: background fetch does not come back to them. */
    private final BitSet unfetchable = new BitSet();
    private final long totalBytes;
    private long localBytes;
    private final ReadCounters counters;
    static final long FIRST_UNIT = 64L << 10;
    private static final long BURST_NANOS = 1_000_000_000L;
    /** The foreground unit now, and when the last foreground fetch was planned (0: never); guarded by this. */
    private long foregroundUnit;
    private long lastForegroundFetch;
    private volatile String lastError;
    private volatile Instant lastErrorAt;
    private volatile String prefetchState = "off";
    private volatile String backgroundState = "off";
    private volatile boolean closed;
    /** Set when the disk tier evicted one of this layer's chunks: the local marks are checked again before they are trusted. */
    private volatile boolean evictedSinceCheck;
    /** Compressed bytes of the members this node holds chunks of: the reference's {@code fetchedSize}. */
    private long localCompressedBytes;

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
        this.memory = store.memory;
        this.disk = store.disk;
        this.scheduler = store.scheduler;
        this.options = scheduler.options();
        this.inflight = store.inflight;
        this.counters = new ReadCounters(store.totals);
        long total = 0;
        for (int i = 0; i < index.chunkTotal(); i++) {
            Chunk c = index.chunkAt(i);
            if (c != null) {
                total += c.size();
                if (c.digest() != null && disk.contains(key(c))) {
                    markLocal(c);
                }
            }
        }
        this.totalBytes = total;
        this.retention = disk.retain(digest, index, evicted -> evictedSinceCheck = true);
    }

    private ChunkKey key(Chunk chunk) throws VerificationException {
        return ChunkKey.of(digest, chunk);
    }

    /** The key of a chunk already known to carry a digest. */
    private ChunkKey keyOf(Chunk chunk) {
        return new ChunkKey(digest, chunk.digest());
    }

    public TocIndex index() {
        return index;
    }

    @Override
    public byte[] read(Chunk chunk) throws IOException {
        return read(chunk, chunk.size());
    }

    /** Counts {@code bytesUsed} as served by the tier that answered. */
    @Override
    public byte[] read(Chunk chunk, long bytesUsed) throws IOException {
        long t0 = System.nanoTime();
        ChunkKey key = key(chunk);
        byte[] data = fromMemory(key, bytesUsed, t0);
        if (data != null) {
            return data;
        }
        // Through fetch() even when the chunk is on disk: the kernel asks for a chunk's 1 MiB pieces
        // at once, and one of them should load and verify it, not each.
        boolean local = isLocal(chunk.index());
        try (Closeable ignored = scheduler.foreground()) {
            data = await(fetch(chunk.index(), foregroundUnit(t0), Long.MAX_VALUE, true));
        }
        counters.served(local ? ReadSource.DISK : ReadSource.NETWORK, bytesUsed, System.nanoTime() - t0);
        memory.consumed(key, bytesUsed);
        return data;
    }

    /**
     * How far a read's fetch may reach past its own chunk into missing neighbours: 64 KiB for the
     * first read after a quiet second (a container's first file: its bytes and latency are what it
     * waits for, the reference's unit is 50,000 bytes), doubling with each read that follows within
     * the second, up to the fetch unit: a burst of small-file reads (a start-up scanning a package
     * tree) soon fetches them many to a request.
     */
    private long foregroundUnit(long now) {
        synchronized (this) {
            boolean burst = lastForegroundFetch != 0 && now - lastForegroundFetch < BURST_NANOS;
            foregroundUnit = burst ? Math.min(options.fetchUnit(), foregroundUnit * 2) : Math.min(options.fetchUnit(), FIRST_UNIT);
            lastForegroundFetch = now;
            return foregroundUnit;
        }
    }

    /** The chunk from the memory tier, its {@code bytesUsed} counted as served and consumed there; null when it is not held. */
    private byte[] fromMemory(ChunkKey key, long bytesUsed, long t0) {
        byte[] data = memory.get(key);
        if (data != null) {
            counters.served(ReadSource.MEMORY, bytesUsed, System.nanoTime() - t0);
            memory.consumed(key, bytesUsed);
        }
        return data;
    }

    /** Where a read's chunk came from, for the read-latency metrics. */
    public enum ReadSource { MEMORY, DISK, NETWORK }

    /** What this layer's reads took and its fetches cost, since it opened (the node's totals are {@link ChunkStore#totals()}). */
    public ReadCounters counters() {
        return counters;
    }

    /** The chunk from the memory tier, or from the disk tier when it is there; null when it must be fetched. */
    @Override
    public byte[] readIfLocal(Chunk chunk, long bytesUsed) throws IOException {
        long t0 = System.nanoTime();
        ChunkKey key = key(chunk);
        byte[] data = fromMemory(key, bytesUsed, t0);
        if (data != null) {
            return data;
        }
        return isLocal(chunk.index()) && disk.contains(key) ? read(chunk, bytesUsed) : null;
    }

    /**
     * From the memory tier; else, for a chunk this open wrote or verified on disk, straight from its
     * file into FUSE's buffer, neither loaded whole onto the heap nor kept in memory (the page cache
     * keeps what is read); else as {@link #readIfLocal}.
     */
    @Override
    public boolean copyIfLocal(Chunk chunk, int offset, int length, java.nio.ByteBuffer into) throws IOException {
        long t0 = System.nanoTime();
        ChunkKey key = key(chunk);
        byte[] data = fromMemory(key, length, t0);
        if (data != null) {
            into.put(data, offset, length);
            return true;
        }
        if (isLocal(chunk.index()) && isVerifiedOnDisk(chunk.index()) && disk.copyVerifiedBefore(key, chunk, offset, length, into)) {
            counters.served(ReadSource.DISK, length, System.nanoTime() - t0);
            return true;
        }
        data = readIfLocal(chunk, length); // counts what it serves
        if (data == null) {
            return false;
        }
        into.put(data, offset, length);
        return true;
    }

    /** A chunk marked local, from the disk tier and now also in memory; null when the disk tier lacks it. */
    private byte[] fromDisk(Chunk chunk) throws IOException {
        byte[] data = isVerifiedOnDisk(chunk.index()) ? disk.getVerifiedBefore(key(chunk), chunk) : disk.get(key(chunk), chunk);
        if (data == null) {
            unmarkLocal(chunk); // evicted (the disk tier was smaller than the mounted layers) or found damaged
            return null;
        }
        memory.put(key(chunk), data);
        markLocal(chunk);
        markVerifiedOnDisk(chunk);
        return data;
    }

    /**
     * Brings each upcoming chunk into the memory tier on the read-ahead threads (from the disk tier
     * when local, else fetched). Each chunk is queued once, however often it is hinted, so the threads
     * work on different chunks rather than all waiting on the same one.
     */
    @Override
    public void readAhead(List<Chunk> upcoming) {
        for (Chunk c : upcoming) {
            // a chunk verified on disk is not brought in: FUSE reads copy it from its file (copyIfLocal)
            if (c.digest() == null || memory.get(keyOf(c)) != null || isLocal(c.index()) && isVerifiedOnDisk(c.index())
                    || inflight.containsKey(keyOf(c)) || !queuedAhead.add(c.index())) {
                continue;
            }
            scheduler.readAhead(() -> {
                try {
                    if (closed || memory.get(key(c)) != null) {
                        return;
                    }
                    try (Closeable ignored = scheduler.foreground()) {
                        await(fetch(c.index(), options.fetchUnit(), Long.MAX_VALUE, true));
                    }
                } catch (IOException failed) {
                    // recorded by fetch; the reader's own read tries again
                } finally {
                    queuedAhead.remove(c.index());
                }
            });
        }
    }

    /** Fetches the prioritized area ({@code [0, .prefetch.landmark)}) as foreground work; returns its bytes fetched. */
    public long prefetch() {
        long end = index.prioritizedEnd();
        if (end == 0) {
            prefetchState = "none";
            return 0;
        }
        prefetchState = "running";
        long before = counters.fetchedBytes();
        try (Closeable ignored = scheduler.foreground()) {
            for (int i = 0; i < index.chunkTotal() && !closed; i++) {
                Chunk c = index.chunkAt(i);
                if (c == null || isLocal(i) || c.digest() != null && inflight.containsKey(keyOf(c))) {
                    continue;
                }
                if (c.compressedOffset() >= end) {
                    break;
                }
                await(fetch(i, Math.max(options.fetchUnit(), PREFETCH_UNIT), end, true));
            }
            prefetchState = "done";
        } catch (IOException e) {
            prefetchState = "failed";
        }
        return counters.fetchedBytes() - before;
    }

    /**
     * Fetches every chunk the node does not have, in blob order, at the scheduler's background
     * priority, until all are local or the layer is closed. A failure (the registry is down) is
     * retried with growing pauses, so the fetch resumes when the registry returns. When the disk
     * tier cannot hold the mounted layers it stops, and says so: fetching on would only evict what
     * it fetched a moment before, in a loop.
     */
    public void fetchRemaining() {
        backgroundState = "running";
        long pauseMillis = 1000;
        long lastSpan = 0;
        try {
            for (int i = 0; i < index.chunkTotal() && !closed; ) {
                if (!disk.canHoldMountedLayers()) {
                    backgroundState = "stopped: the disk cache (" + disk.maxBytes() + " bytes) cannot hold the mounted "
                            + "layers (" + disk.mountedLayersBytes() + " bytes); raise --cache-size";
                    LOG.warning("background fetch of layer " + digest + " " + backgroundState
                            + ": reads of what is not cached still go to the registry");
                    return;
                }
                Chunk c = index.chunkAt(i);
                if (c == null || isLocal(i)) {
                    i++;
                    continue;
                }
                if (!scheduler.awaitBackgroundTurn(lastSpan)) {
                    return;
                }
                long before = counters.fetchedBytes();
                try {
                    await(fetch(i, options.fetchUnit(), Long.MAX_VALUE, false));
                    pauseMillis = 1000;
                    i++;
                } catch (IOException failed) {
                    if (failed.getCause() instanceof InvalidBlobException || failed instanceof InvalidBlobException) {
                        synchronized (this) {
                            unfetchable.set(i);
                        }
                        i++; // the blob itself is bad here: fetching it again gives the same bytes
                        continue;
                    }
                    backgroundState = "retrying";
                    Thread.sleep(pauseMillis);
                    pauseMillis = Math.min(pauseMillis * 2, 60_000);
                    backgroundState = "running";
                }
                lastSpan = counters.fetchedBytes() - before;
                if (i == index.chunkTotal() && recheckLocal()) {
                    i = firstMissing(); // chunks evicted while the fetch went on
                }
            }
            backgroundState = closed ? "stopped" : "done";
        } catch (InterruptedException e) {
            backgroundState = "stopped";
            Thread.currentThread().interrupt();
        } catch (Throwable unexpected) {
            // a hostile TOC must not leave the state saying "running" forever
            backgroundState = "failed: " + unexpected;
            failure(new IOException("background fetch of layer " + digest + " failed: " + unexpected, unexpected));
        }
    }

    private synchronized int firstMissing() {
        for (int i = 0; i < index.chunkTotal(); i++) {
            if (!local.get(i) && !unfetchable.get(i) && index.chunkAt(i) != null) {
                return i;
            }
        }
        return index.chunkTotal();
    }

    /** Starts prefetch and background fetch as the options say, on the scheduler's threads. */
    public void startFetching() {
        if (options.prefetch()) {
            prefetchState = "queued";
            scheduler.prefetch(this::prefetch);
        }
        if (options.backgroundFetch()) {
            backgroundState = "queued";
            scheduler.foregroundExpected();
            scheduler.background(this::fetchRemaining);
        }
    }

    private static byte[] await(CompletableFuture<byte[]> fetch) throws IOException {
        try {
            return fetch.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while fetching");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }

    /**
     * The bytes of chunk {@code first}: fetched here, together with the missing chunks after it
     * that start before {@code stopAt} while the request stays within {@code unit} bytes, or by
     * whoever is fetching it already.
     */
    private CompletableFuture<byte[]> fetch(int first, long unit, long stopAt, boolean keepInMemory) {
        Chunk c = index.chunkAt(first);
        ChunkKey key;
        try {
            key = key(c);
        } catch (VerificationException e) {
            return CompletableFuture.failedFuture(failure(e));
        }
        CompletableFuture<byte[]> mine = new CompletableFuture<>();
        CompletableFuture<byte[]> existing = inflight.putIfAbsent(key, mine);
        if (existing != null) {
            return existing;
        }
        List<Chunk> span = new ArrayList<>();
        List<ChunkKey> keys = new ArrayList<>();
        List<CompletableFuture<byte[]>> futures = new ArrayList<>();
        span.add(c);
        keys.add(key);
        futures.add(mine);
        try {
            byte[] cached = memory.get(key); // it may have arrived between the caller's look and our claim
            if (cached == null && (isLocal(first) || disk.contains(key))) { // another chunk of the same bytes may have stored it
                cached = fromDisk(c);
            }
            if (cached != null) {
                mine.complete(cached);
                return mine;
            }
            // a span ends at the next multiple of the fetch unit: each aligned unit has one owner among the
            // peers, who fills it once, and a reader never holds chunks of one unit while it waits for another's
            // (two nodes each holding what the other waits for would wait until a timeout, then both fetch it)
            long unitEnd = (c.compressedOffset() / options.fetchUnit() + 1) * options.fetchUnit();
            List<Chunk> planned = SpanPlan.plan(index, first, unit, options.maxGap(), Math.min(stopAt, unitEnd), k -> {
                Chunk next = index.chunkAt(k);
                // the disk tier too: this node may have filled the chunk for a peer, which no mark of this layer shows
                return !isLocal(k) && next.digest() != null && !inflight.containsKey(keyOf(next)) && !disk.contains(keyOf(next));
            });
            int before = 0; // siblings before the first chunk go ahead of it, so the span stays in blob order
            for (Chunk next : planned) {
                if (next.index() == first) {
                    continue; // claimed above
                }
                ChunkKey k = keyOf(next);
                CompletableFuture<byte[]> f = new CompletableFuture<>();
                if (inflight.putIfAbsent(k, f) != null) {
                    if (next.index() > first) {
                        break; // claimed since planning: the span ends before it
                    }
                    continue; // a sibling someone else fetches meanwhile
                }
                int at = next.index() < first ? before++ : span.size();
                span.add(at, next);
                keys.add(at, k);
                futures.add(at, f);
            }
            List<Origin.Fetched> fetched;
            try {
                Origin.Span got = origin.fetch(span);
                counters.fetched(got);
                fetched = got.chunks();
            } catch (IOException e) {
                long startAt = c.compressedOffset();
                long endAt = span.getLast().compressedEnd();
                throw failure(new IOException("fetching " + (endAt - startAt) + " bytes at " + startAt + " of layer "
                        + digest + " for " + c.describe() + " failed: " + e.getMessage(), e));
            }
            for (int i = 0; i < span.size(); i++) {
                Origin.Fetched f = fetched.get(i);
                if (f.failure() == null) {
                    store(span.get(i), keys.get(i), f.data(), keepInMemory, futures.get(i));
                } else {
                    futures.get(i).completeExceptionally(failure(new IOException("layer " + digest + ": "
                            + f.failure().getMessage(), f.failure())));
                }
            }
        } catch (IOException | RuntimeException e) {
            for (CompletableFuture<byte[]> f : futures) {
                f.completeExceptionally(e);
            }
        } finally {
            for (int i = 0; i < keys.size(); i++) {
                inflight.remove(keys.get(i), futures.get(i));
            }
        }
        return mine;
    }

    /** Verified bytes of a chunk: into the tiers, then to its waiters (who need not wait for the disk write). */
    private void store(Chunk chunk, ChunkKey key, byte[] data, boolean keepInMemory, CompletableFuture<byte[]> waiters) {
        if (keepInMemory) {
            memory.put(key, data);
        }
        waiters.complete(data);
        if (disk.put(key, data)) {
            markLocal(chunk);
            markVerifiedOnDisk(chunk);
        }
    }

    private IOException failure(IOException e) {
        counters.failed(e instanceof VerificationException);
        lastError = e.getMessage();
        lastErrorAt = Instant.now();
        LOG.log(Level.WARNING, e.getMessage());
        return e;
    }

    private synchronized boolean isLocal(int chunkIndex) {
        return local.get(chunkIndex);
    }

    private synchronized void markLocal(Chunk chunk) {
        if (!local.get(chunk.index())) {
            local.set(chunk.index());
            localBytes += chunk.size();
            localCompressedBytes += memberBytes(chunk);
        }
    }

    private synchronized boolean isVerifiedOnDisk(int chunkIndex) {
        return verifiedOnDisk.get(chunkIndex);
    }

    private synchronized void markVerifiedOnDisk(Chunk chunk) {
        verifiedOnDisk.set(chunk.index());
    }

    private synchronized void unmarkLocal(Chunk chunk) {
        verifiedOnDisk.clear(chunk.index());
        if (local.get(chunk.index())) {
            local.clear(chunk.index());
            localBytes -= chunk.size();
            localCompressedBytes -= memberBytes(chunk);
        }
    }

    /** A member's compressed length, counted for the chunk that starts it, so shared members count once. */
    private static long memberBytes(Chunk chunk) {
        return chunk.innerOffset() == 0 ? Math.min(chunk.compressedLength(), chunk.size() + SpanPlan.STREAM_SLACK) : 0;
    }

    /**
     * After the disk tier evicted chunks of this layer, unmarks those it no longer holds; true when
     * any was. A chunk counts as local only while the disk tier has it.
     */
    private boolean recheckLocal() {
        if (!evictedSinceCheck) {
            return false;
        }
        evictedSinceCheck = false;
        boolean changed = false;
        for (int i = nextLocal(0); i >= 0; i = nextLocal(i + 1)) {
            Chunk c = index.chunkAt(i);
            if (c != null && !disk.contains(keyOf(c))) {
                unmarkLocal(c);
                changed = true;
            }
        }
        return changed;
    }

    private synchronized int nextLocal(int from) {
        return local.nextSetBit(from);
    }

    /** Bytes of the layer's files this node holds, out of {@link #totalBytes()}. */
    public long localBytes() {
        recheckLocal();
        synchronized (this) {
            return localBytes;
        }
    }

    public long totalBytes() {
        return totalBytes;
    }

    public String lastError() {
        return lastError;
    }

    public String backgroundState() {
        return backgroundState;
    }

    public String prefetchState() {
        return prefetchState;
    }

    /**
     * The state file: the reference snapshotter's fields ({@code digest}, {@code size},
     * {@code fetchedSize}, {@code fetchedPercent}, {@code error}) and ours. {@code fetchedPercent} is
     * the share of the layer's file bytes this node holds: 100 means the registry is no longer needed.
     */
    public byte[] stateJson() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(512);
        try (JsonGenerator g = JSON.createGenerator(out)) {
            long have = localBytes();
            long haveCompressed;
            synchronized (this) {
                haveCompressed = Math.min(blobSize, localCompressedBytes);
            }
            g.writeStartObject();
            if (lastError != null) {
                g.writeStringField("error", lastError);
                g.writeStringField("errorTime", lastErrorAt.toString());
            }
            g.writeStringField("digest", digest.toString());
            g.writeNumberField("size", blobSize);
            g.writeNumberField("fetchedSize", haveCompressed);
            g.writeNumberField("fetchedPercent", totalBytes == 0 ? 100.0 : Math.floor(have * 10000.0 / totalBytes) / 100);
            g.writeNumberField("localBytes", have);
            g.writeNumberField("totalBytes", totalBytes);
            g.writeObjectFieldStart("bytesServed");
            g.writeNumberField("memory", counters.servedFromMemory());
            g.writeNumberField("disk", counters.servedFromDisk());
            g.writeNumberField("registry", counters.servedFromNetwork());
            g.writeEndObject();
            g.writeNumberField("fetchRequests", counters.fetchRequests());
            g.writeNumberField("fetchedBytes", counters.fetchedBytes());
            g.writeNumberField("peerBytes", counters.peerBytes());
            g.writeNumberField("failures", counters.failures());
            g.writeStringField("prefetch", prefetchState);
            g.writeStringField("backgroundFetch", backgroundState);
            g.writeEndObject();
        } catch (IOException e) {
            throw new IllegalStateException(e); // in-memory output cannot fail
        }
        out.write('\n');
        return out.toByteArray();
    }

    @Override
    public synchronized void close() throws IOException {
        if (!closed) {
            closed = true;
            retention.close();
        }
    }
}
