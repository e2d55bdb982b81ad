package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.InvalidBlobException;
import dev.starling.estargz.TocIndex;
import java.io.Closeable;
import java.io.IOException;
import java.util.BitSet;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * What a layer fetches without a reader asking: the prioritized area ({@code .prefetch.landmark})
 * as foreground work when it opens, then everything else at the scheduler's background priority,
 * so the node stops needing the registry. Both go through the layer's read line.
 */
final class LayerFetcher {
    private static final Logger LOG = Logger.getLogger(LayerFetcher.class.getName());
    /** Prefetch asks for the prioritized area in requests this large: it is wanted whole, and soon. */
    static final long PREFETCH_UNIT = 16L << 20;
    static final long FIRST_PAUSE_NANOS = TimeUnit.SECONDS.toNanos(1);
    static final long MAX_PAUSE_NANOS = TimeUnit.MINUTES.toNanos(1);

    enum State {
        OFF, QUEUED, RUNNING, RETRYING, DONE, NONE, STOPPED, FAILED;

        String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final LayerReader layer;
    private final FetchScheduler scheduler;
    private final TocIndex index;
    private volatile State prefetch = State.OFF;
    private volatile State background = State.OFF;
    /** Why the background fetch stopped or failed, when it did. */
    private volatile String backgroundReason;

    LayerFetcher(LayerReader layer, FetchScheduler scheduler) {
        this.layer = layer;
        this.scheduler = scheduler;
        this.index = layer.index();
    }

    /** Queues prefetch and background fetch as the options say. */
    void start() {
        FetchOptions options = scheduler.options();
        if (options.prefetch()) {
            prefetch = State.QUEUED;
            scheduler.prefetch(this::prefetch);
        }
        if (options.backgroundFetch()) {
            background = State.QUEUED;
            scheduler.foregroundExpected();
            scheduler.background(this::fetchRemaining);
        }
    }

    String prefetchState() {
        return prefetch.label();
    }

    String backgroundState() {
        String reason = backgroundReason;
        return reason == null ? background.label() : background.label() + ": " + reason;
    }

    /** Fetches the prioritized area ({@code [0, .prefetch.landmark)}) as foreground work; returns its bytes fetched. */
    long prefetch() {
        long end = index.prioritizedEnd();
        if (end == 0) {
            prefetch = State.NONE;
            return 0;
        }
        prefetch = State.RUNNING;
        long before = layer.counters().fetchedBytes();
        try (Closeable ignored = scheduler.foreground()) {
            for (int i = 0; i < index.chunkTotal() && !layer.isClosed(); i++) {
                Chunk c = index.chunkAt(i);
                if (c == null || layer.isLocal(c)) {
                    continue;
                }
                if (c.compressedOffset() >= end) {
                    break;
                }
                layer.load(c, Math.max(scheduler.options().fetchUnit(), PREFETCH_UNIT), end, true);
            }
            prefetch = State.DONE;
        } catch (IOException e) {
            prefetch = State.FAILED;
        }
        return layer.counters().fetchedBytes() - before;
    }

    /**
     * Fetches every chunk the node does not hold, in blob order, pass after pass until a pass finds
     * none missing (the disk tier may evict chunks meanwhile) or the layer closes. A failure (the
     * registry is down) is retried with pauses doubling from 1 s to 1 min, so the fetch resumes when
     * the registry returns; a chunk whose bytes in the blob are bad, or that the disk tier does not
     * keep, is not come back to. When the disk tier cannot hold the mounted layers it stops, and says
     * so: fetching on would only evict what it fetched a moment before, in a loop.
     */
    void fetchRemaining() {
        background = State.RUNNING;
        BitSet given = new BitSet(); // up on: bad bytes in the blob, or not kept by the disk tier
        long pause = FIRST_PAUSE_NANOS;
        long lastSpan = 0;
        try {
            boolean fetchedAny = true;
            while (fetchedAny && !layer.isClosed()) {
                fetchedAny = false;
                for (int i = 0; i < index.chunkTotal() && !layer.isClosed(); ) {
                    if (!layer.store().disk().canHoldMountedLayers()) {
                        stop();
                        return;
                    }
                    Chunk c = index.chunkAt(i);
                    if (c == null || given.get(i) || layer.isLocal(c)) {
                        i++;
                        continue;
                    }
                    if (!scheduler.awaitBackgroundTurn(lastSpan)) {
                        return;
                    }
                    long before = layer.counters().fetchedBytes();
                    try {
                        layer.load(c, scheduler.options().fetchUnit(), Long.MAX_VALUE, false);
                        pause = FIRST_PAUSE_NANOS;
                        fetchedAny = true;
                        if (!layer.isLocal(c)) {
                            given.set(i); // the disk tier did not keep it (a full disk): fetching it again would not either
                        }
                        i++;
                    } catch (IOException failed) {
                        if (failed.getCause() instanceof InvalidBlobException || failed instanceof InvalidBlobException) {
                            given.set(i++); // the blob itself is bad here: fetching it again gives the same bytes
                            continue;
                        }
                        background = State.RETRYING;
                        scheduler.clock().sleep(pause);
                        pause = Math.min(pause * 2, MAX_PAUSE_NANOS);
                        background = State.RUNNING;
                    }
                    lastSpan = layer.counters().fetchedBytes() - before;
                }
            }
            background = layer.isClosed() ? State.STOPPED : State.DONE;
        } catch (InterruptedException e) {
            background = State.STOPPED;
            Thread.currentThread().interrupt();
        } catch (Throwable unexpected) {
            // a hostile TOC must not leave the state saying "running" forever
            backgroundReason = unexpected.toString();
            background = State.FAILED;
            layer.failure(new IOException("background fetch of layer " + layer.digest() + " failed: " + unexpected, unexpected));
        }
    }

    private void stop() {
        DiskChunkCache disk = layer.store().disk();
        backgroundReason = "the disk cache (" + disk.maxBytes() + " bytes) cannot hold the mounted layers ("
                + disk.mountedLayersBytes() + " bytes); raise --cache-size";
        background = State.STOPPED;
        LOG.warning("background fetch of layer " + layer.digest() + " stopped: " + backgroundReason
                + ": reads of what is not cached still go to the registry");
    }
}
