package dev.starling.peer;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Peers caught sending bytes that do not match the TOC: not asked again for a while, and counted.
 * Time is injected ({@code nanoTime}) so tests never sleep.
 */
public final class Quarantine {
    private static final Logger LOG = Logger.getLogger(Quarantine.class.getName());

    private final Duration period;
    private final LongSupplier nanoTime;
    private final Map<String, Long> until = new ConcurrentHashMap<>();
    private final AtomicLong count = new AtomicLong();

    public Quarantine(Duration period, LongSupplier nanoTime) {
        this.period = period;
        this.nanoTime = nanoTime;
    }

    public void quarantine(String nodeId, String why) {
        count.incrementAndGet();
        until.put(nodeId, nanoTime.getAsLong() + period.toNanos());
        LOG.warning("quarantined peer " + nodeId + " for " + period.toSeconds() + " s: " + why);
    }

    public boolean isQuarantined(String nodeId) {
        Long end = until.get(nodeId);
        if (end == null) {
            return false;
        }
        if (nanoTime.getAsLong() - end >= 0) {
            until.remove(nodeId, end);
            return false;
        }
        return true;
    }

    /** Quarantines so far (a peer caught twice counts twice). */
    public long count() {
        return count.get();
    }

    /** The peers quarantined now. */
    public java.util.Set<String> current() {
        until.keySet().removeIf(id -> !isQuarantined(id));
        return java.util.Set.copyOf(until.keySet());
    }
}
