package dev.starling.peer;

import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerException;
import java.util.EnumMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * Every time a read went past a peer to the next source, and why: counted by reason (status,
 * metrics) and logged once per peer and reason. P2P that is silently unused is the commonest
 * complaint about P2P distribution; here it shows.
 */
public final class PeerFallbacks {
    private static final Logger LOG = Logger.getLogger(PeerFallbacks.class.getName());

    /** Why a peer did not serve a request. */
    public enum Reason {
        /** It answered BUSY (its connection's limit of requests, or this node over its rate there). */
        BUSY,
        /** It did not answer in time. */
        TIMEOUT,
        /** It answered without some chunks (it has not got them, and would not fetch them): those came from the registry. */
        MISS,
        /** The connection could not be made or dropped. */
        UNREACHABLE,
        /** It refused the request (a bad request, a registry it does not fetch from, its fetch failed). */
        REFUSED,
        /** It does not serve this blob to this node (docs/operations.md: who may read what). */
        FORBIDDEN,
        /** It broke the protocol or sent bytes that do not verify: quarantined. */
        VIOLATION,
        /** Not asked at all: the blob is private and --peer-access is public. */
        PRIVATE;

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final Map<Reason, AtomicLong> counts = new EnumMap<>(Reason.class);
    private final Set<String> logged = ConcurrentHashMap.newKeySet();

    public PeerFallbacks() {
        for (Reason r : Reason.values()) {
            counts.put(r, new AtomicLong());
        }
    }

    /** The reason a failure of a peer request stands for. */
    public static Reason reasonOf(Throwable failure) {
        return switch (failure) {
            case PeerException.Busy b -> Reason.BUSY;
            case PeerException.Violation v -> Reason.VIOLATION;
            case PeerException.Closed c -> Reason.UNREACHABLE;
            case PeerException.Refused r -> r.code() == Frame.ErrorCode.FORBIDDEN ? Reason.FORBIDDEN : Reason.REFUSED;
            default -> Reason.TIMEOUT;
        };
    }

    /** Counts one fallback past {@code peer}; the first of each reason for each peer is logged with {@code detail}. */
    public void record(String peer, Reason reason, String detail) {
        counts.get(reason).incrementAndGet();
        if (logged.size() < 10_000 && logged.add(peer + " " + reason)) {
            LOG.warning("peer " + peer + " did not serve a request (" + reason.label() + "): " + detail
                    + "; the next source was used. Logged once per peer and reason; starling status counts them all");
        }
    }

    /** Spans a BUSY owner's holders served instead of it (the swarm at work; not a fallback). */
    private final java.util.concurrent.atomic.AtomicLong servedByHolders = new java.util.concurrent.atomic.AtomicLong();

    void servedBySwarm() {
        servedByHolders.incrementAndGet();
    }

    /** Spans a BUSY owner's holders served instead of it. */
    public long servedByHolders() {
        return servedByHolders.get();
    }

    public long count(Reason reason) {
        return counts.get(reason).get();
    }

    /** Counts by reason, every reason present. */
    public Map<Reason, Long> counts() {
        Map<Reason, Long> out = new EnumMap<>(Reason.class);
        counts.forEach((r, n) -> out.put(r, n.get()));
        return out;
    }
}
