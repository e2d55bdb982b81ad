package dev.starling.fetch;

import dev.starling.estargz.RangeReader;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/** A blob in memory that counts its Range requests, fails the next ones on demand, and can hold them at a gate. */
public final class FaultyRangeReader implements RangeReader {
    private final byte[] blob;
    public final AtomicInteger requests = new AtomicInteger();
    final AtomicLong bytes = new AtomicLong();
    private final AtomicInteger failNext = new AtomicInteger();
    private volatile CountDownLatch gate;
    /** Counted down when a request reaches the gate. */
    final CountDownLatch arrived = new CountDownLatch(1);

    public FaultyRangeReader(byte[] blob) {
        this.blob = blob;
    }

    /** The next {@code n} requests fail as a registry outage would. */
    public void failNext(int n) {
        failNext.set(n);
    }

    /** Requests wait until the returned latch is counted down. */
    CountDownLatch hold() {
        gate = new CountDownLatch(1);
        return gate;
    }

    @Override
    public long size() {
        return blob.length;
    }

    @Override
    public byte[] read(long offset, int length) throws IOException {
        CountDownLatch g = gate;
        if (g != null) {
            arrived.countDown();
            try {
                if (!g.await(30, TimeUnit.SECONDS)) {
                    throw new IOException("the test never opened the gate");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException();
            }
        }
        if (failNext.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            throw new IOException("injected: the registry answered 503");
        }
        requests.incrementAndGet();
        bytes.addAndGet(length);
        return RangeReader.of(blob).read(offset, length);
    }
}
