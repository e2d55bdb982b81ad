package dev.starling.protocol;

import java.util.function.LongSupplier;

/**
 * The answers a node sends at once, to everyone (its uplink's share per answer), and, when all are
 * taken, when a requester should ask again: about when the first slot frees, from how long slots
 * have lately been held (an exponentially weighted mean) shared over the slots. On a fast link a
 * span's answer takes milliseconds and requesters come back that soon; on a slow one, later, up to
 * {@link #MAX_RETRY_AFTER_MILLIS}, which stays below the retry-after of a rate limit so that a
 * requester can tell the two apart. Plain policy, clock injected: {@link PeerServer} runs it, and so
 * does the swarm simulation (bench/SwarmSimulation.java).
 */
public final class UploadSlots {
    /** The latest a slot BUSY asks a requester to come back. */
    public static final int MAX_RETRY_AFTER_MILLIS = 1000;
    /** The soonest, so that a hot span does not draw a storm of requests. */
    public static final int MIN_RETRY_AFTER_MILLIS = 50;
    /** Before any slot was released: a guess for a 2 MiB span on a 1 Gbit/s link shared by 8. */
    static final long FIRST_HOLD_NANOS = 150_000_000L;

    private final int slots;
    private final LongSupplier nanoTime;
    private int taken;
    private double meanHoldNanos = FIRST_HOLD_NANOS;

    /** @param slots answers sent at once; 0 for no bound */
    public UploadSlots(int slots, LongSupplier nanoTime) {
        if (slots < 0) {
            throw new IllegalArgumentException("upload slots are 0 (no bound) or more, not " + slots);
        }
        this.slots = slots;
        this.nanoTime = nanoTime;
    }

    /** A slot taken at this time (pass it to {@link #release}), or -1 when every slot is taken. */
    public synchronized long tryAcquire() {
        if (slots > 0 && taken >= slots) {
            return -1;
        }
        taken++;
        return nanoTime.getAsLong();
    }

    /** The slot taken at {@code acquiredAt} is free: its answer has left (or failed). */
    public synchronized void release(long acquiredAt) {
        taken--;
        long held = Math.max(0, nanoTime.getAsLong() - acquiredAt);
        meanHoldNanos = meanHoldNanos * 0.8 + held * 0.2;
    }

    /** When a request refused for want of a slot should come again: about when the first one frees. */
    public synchronized int retryAfterMillis() {
        double perSlot = meanHoldNanos / Math.max(1, slots) / 1_000_000;
        return (int) Math.max(MIN_RETRY_AFTER_MILLIS, Math.min(MAX_RETRY_AFTER_MILLIS, perSlot));
    }

    /** Slots taken now. */
    public synchronized int taken() {
        return taken;
    }
}
