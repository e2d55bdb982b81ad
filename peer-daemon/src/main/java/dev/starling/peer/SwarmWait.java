package dev.starling.peer;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.LongSupplier;
import java.util.function.Predicate;

/**
 * What a requester does while a span's owner answers BUSY for want of upload slots: each time, it
 * asks a few of the holders the owner names (and those that a busy holder names in turn), one after
 * the other, for what they hold; when none has it all, it asks the owner again after the owner's
 * retry-after; and it keeps at this for {@link #PATIENCE} (a busy owner is sending, not failing).
 * An owner that asks for more than {@link #MAX_RETRY_AFTER_MILLIS} (over its rate, not out of slots)
 * or the end of patience sends the request to the next source. Patience is bounded because a slot
 * goes to whoever asks the moment it frees, not to who waited longest: on a slow uplink a requester
 * can lose that race for minutes (bench/swarm.sh at N = 12 with two minutes of patience: three
 * owners timed out that way, and the wall time and egress grew).
 * <p>
 * Plain policy with the clock injected: {@link PeerOrigin} runs it over the network, and the swarm
 * simulation (bench/SwarmSimulation.java) over simulated links.
 */
public final class SwarmWait {
    /** Holders asked per BUSY answer of the owner, before the owner is asked again. */
    public static final int HOLDERS_PER_ROUND = 4;
    /** A BUSY owner is waited for only when it asks for no more than this (its slots); over its rate, the next source is asked. */
    public static final int MAX_RETRY_AFTER_MILLIS = dev.starling.protocol.UploadSlots.MAX_RETRY_AFTER_MILLIS;
    /** How long a requester waits through a busy owner's BUSY answers before the next source (as 20 tries of 500 ms did). */
    public static final java.time.Duration PATIENCE = java.time.Duration.ofSeconds(10);
    /** The shortest wait before the owner is asked again, whatever it says. */
    static final int MIN_RETRY_AFTER_MILLIS = dev.starling.protocol.UploadSlots.MIN_RETRY_AFTER_MILLIS;

    private final String self;
    private final String owner;
    private final Predicate<String> usable;
    private final LongSupplier nanoTime;
    private final long deadline;
    private final Deque<String> round = new ArrayDeque<>();
    private final Set<String> inRound = new HashSet<>();
    private int asked;

    /**
     * @param usable   whether a node id may be asked: a member now, not quarantined
     * @param patience how long the owner's BUSY answers are waited through in all
     */
    public SwarmWait(String self, String owner, Predicate<String> usable, LongSupplier nanoTime, long patienceNanos) {
        this.self = self;
        this.owner = owner;
        this.usable = usable;
        this.nanoTime = nanoTime;
        this.deadline = nanoTime.getAsLong() + patienceNanos;
    }

    /** The owner answered BUSY naming {@code holders}: a new round of asking them begins. */
    public void ownerBusy(List<String> holders) {
        round.clear();
        inRound.clear();
        asked = 0;
        named(holders);
    }

    /** A holder asked in this round was busy too and named {@code holders}: they join the round's end. */
    public void named(List<String> holders) {
        for (String id : holders) {
            if (!id.equals(self) && !id.equals(owner) && usable.test(id) && inRound.add(id)) {
                round.add(id);
            }
        }
    }

    /** The next holder to ask in this round, or null: the round is over, and the owner is asked again (or not). */
    public String nextHolder() {
        if (asked == HOLDERS_PER_ROUND || round.isEmpty()) {
            return null;
        }
        asked++;
        return round.poll();
    }

    /**
     * After a round without a complete answer: how long to wait before asking the owner again,
     * given the retry-after it sent; or -1 to give up on it and ask the next source.
     */
    public long retryOwnerAfterMillis(int retryAfterMillis) {
        if (retryAfterMillis > MAX_RETRY_AFTER_MILLIS) {
            return -1;
        }
        long wait = Math.max(MIN_RETRY_AFTER_MILLIS, retryAfterMillis);
        return nanoTime.getAsLong() + wait * 1_000_000L - deadline > 0 ? -1 : wait;
    }
}
