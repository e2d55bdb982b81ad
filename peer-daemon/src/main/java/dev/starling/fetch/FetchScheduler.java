package dev.starling.fetch;

import java.io.Closeable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Who may use the network when, for every layer of the node. Foreground work (a read that waits,
 * read-ahead for a sequential reader, the prefetch of a prioritized area) runs at once. Background
 * work (fetching the rest of each layer so the node stops needing the registry) waits until no
 * foreground fetch has run for {@link FetchOptions#backgroundQuietMillis}, and then goes at most at
 * {@link FetchOptions#backgroundBytesPerSecond}, one span at a time, so a read never queues behind
 * more than one background span.
 */
final class FetchScheduler implements AutoCloseable {
    private final FetchOptions options;
    private final ExecutorService readAhead;
    private final ExecutorService prefetch;
    private final ExecutorService background;
    private int foregroundActive;
    private final FetchClock clock;
    private long lastForegroundEnd;
    private long nextBackgroundSlot;
    private boolean closed;
    /** Compressed bytes being read or decoded now, node-wide, and the bound on them. */
    private long bytesHeld;
    private final long maxBytesHeld;

    public FetchScheduler(FetchOptions options) {
        this(options, FetchClock.SYSTEM);
    }

    FetchScheduler(FetchOptions options, FetchClock clock) {
        this.options = options;
        this.clock = clock;
        this.lastForegroundEnd = clock.nanoTime();
        this.nextBackgroundSlot = lastForegroundEnd;
        this.maxBytesHeld = options.maxBytesInFlight();
        this.readAhead = Executors.newFixedThreadPool(options.readAheadThreads(), threads("starling-read-ahead"));
        this.prefetch = Executors.newSingleThreadExecutor(threads("starling-prefetch"));
        this.background = Executors.newSingleThreadExecutor(threads("starling-background-fetch"));
    }

    private static ThreadFactory threads(String name) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, name + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    public FetchOptions options() {
        return options;
    }

    FetchClock clock() {
        return clock;
    }

    /**
     * Counts as foreground activity now: a layer just opened, and the reads it was opened for are
     * about to come. Background fetching waits its quiet time from here, so it does not take the
     * registry's bandwidth (and the node's CPU) from a container's first reads.
     */
    public synchronized void foregroundExpected() {
        lastForegroundEnd = clock.nanoTime();
        notifyAll();
    }

    /** Marks a foreground fetch until the handle is closed; background fetching pauses meanwhile. */
    public Closeable foreground() {
        synchronized (this) {
            foregroundActive++;
        }
        return () -> {
            synchronized (FetchScheduler.this) {
                foregroundActive--;
                lastForegroundEnd = clock.nanoTime();
                FetchScheduler.this.notifyAll();
            }
        };
    }

    /**
     * Holds {@code bytes} of the node's budget for fetched bytes in memory until the handle is
     * closed, waiting while others hold it: however many readers a layer (or a hostile TOC) sets
     * going, fetch buffers stay within {@link FetchOptions#maxBytesInFlight}. A request larger than
     * the whole budget waits until it has the budget to itself.
     */
    Closeable holdBytes(long bytes) throws java.io.InterruptedIOException {
        long want = Math.min(bytes, maxBytesHeld);
        synchronized (this) {
            try {
                while (bytesHeld + want > maxBytesHeld && bytesHeld > 0) {
                    wait();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while waiting for fetch memory");
            }
            bytesHeld += want;
        }
        return () -> {
            synchronized (FetchScheduler.this) {
                bytesHeld -= want;
                FetchScheduler.this.notifyAll();
            }
        };
    }

    /** Runs read-ahead work on the parallel pool. */
    void readAhead(Runnable task) {
        if (!isClosed()) {
            readAhead.execute(task);
        }
    }

    /** Queues a layer's prefetch; prefetches run one after another, as foreground work. */
    void prefetch(Runnable task) {
        if (!isClosed()) {
            prefetch.execute(task);
        }
    }

    /** Queues a layer's background fetch; layers are fetched one after another. */
    void background(Runnable task) {
        if (!isClosed()) {
            background.execute(task);
        }
    }

    /**
     * Blocks the background fetcher until the foreground has been quiet long enough and the rate
     * limit allows {@code bytes} more; false when the scheduler closed meanwhile.
     */
    boolean awaitBackgroundTurn(long bytes) throws InterruptedException {
        long quiet = TimeUnit.MILLISECONDS.toNanos(options.backgroundQuietMillis());
        long sleepNanos;
        synchronized (this) {
            while (!closed) {
                long sinceForeground = clock.nanoTime() - lastForegroundEnd;
                if (foregroundActive == 0 && sinceForeground >= quiet) {
                    break;
                }
                long waitNanos = foregroundActive > 0 ? quiet : quiet - sinceForeground;
                TimeUnit.NANOSECONDS.timedWait(this, Math.max(1_000_000, waitNanos));
            }
            if (closed) {
                return false;
            }
            long now = clock.nanoTime();
            long rate = options.backgroundBytesPerSecond();
            nextBackgroundSlot = Math.max(nextBackgroundSlot, now);
            sleepNanos = nextBackgroundSlot - now;
            if (rate > 0) {
                nextBackgroundSlot += (long) (bytes * 1e9 / rate);
            }
        }
        if (sleepNanos > 0) {
            clock.sleep(sleepNanos);
        }
        return !isClosed();
    }

    synchronized boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        synchronized (this) {
            closed = true;
            notifyAll();
        }
        background.shutdownNow();
        prefetch.shutdownNow();
        readAhead.shutdownNow();
    }
}
