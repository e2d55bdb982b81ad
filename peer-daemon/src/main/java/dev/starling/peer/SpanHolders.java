package dev.starling.peer;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Who holds which span, as a server learns it: each peer it sent a whole span's chunks to holds
 * them once it verified them. When every upload slot is taken the server names them (BUSY with
 * holders), so a span read by a whole cluster at once reaches it through every node that has it,
 * not through its owner alone. Each answer starts one holder further round the list, so the
 * requesters of a hot span spread over its holders instead of all asking the newest. A hint, no
 * more: a holder that lacks the span answers MISS, and every chunk is verified by its requester
 * whoever sent it. Bounded (spans, holders per span, their age),
 * time injected.
 */
public final class SpanHolders {
    /** Spans remembered: a scale-out reads a few GB, a few thousand 2 MiB spans, of which a node sends some. */
    static final int MAX_SPANS = 2048;
    /**
     * Holders remembered per span, most recent first. More than a BUSY answer names (16): the answers
     * turn round all of them, so a span read by thousands at once is served by dozens of holders at a
     * time rather than by the sixteen newest.
     */
    static final int PER_SPAN = 64;
    /** How long a holder is named: nodes evict and leave. */
    static final long KEPT_NANOS = 10L * 60 * 1_000_000_000L;

    private record Span(String blob, long index) {
    }

    /** A span's holders and when each was recorded, most recent last; and how many answers named them. */
    private static final class Held {
        final LinkedHashMap<String, Long> at = new LinkedHashMap<>();
        int named;
    }

    private final long fetchUnit;
    private final LongSupplier nanoTime;
    /** Per span, its holders; spans least recently touched first. */
    private final LinkedHashMap<Span, Held> spans = new LinkedHashMap<>(64, 0.75f, true);

    /** @param fetchUnit the span placement hashes (a node's fetch unit, the same across the cluster) */
    public SpanHolders(long fetchUnit, LongSupplier nanoTime) {
        this.fetchUnit = fetchUnit;
        this.nanoTime = nanoTime;
    }

    private Span span(String blob, long compressedOffset) {
        return new Span(blob, compressedOffset / fetchUnit);
    }

    /** {@code nodeId} was sent the chunks of the span at {@code compressedOffset} of {@code blob}. */
    public synchronized void held(String blob, long compressedOffset, String nodeId) {
        LinkedHashMap<String, Long> holders = spans.computeIfAbsent(span(blob, compressedOffset), s -> new Held()).at;
        holders.remove(nodeId);
        holders.put(nodeId, nanoTime.getAsLong());
        if (holders.size() > PER_SPAN) {
            holders.remove(holders.keySet().iterator().next());
        }
        if (spans.size() > MAX_SPANS) {
            Iterator<Map.Entry<Span, Held>> eldest = spans.entrySet().iterator();
            eldest.next();
            eldest.remove();
        }
    }

    /**
     * The holders of the span at {@code compressedOffset}, {@code asker} left out: most recent first,
     * the list turned one further on each call.
     */
    public synchronized List<String> holders(String blob, long compressedOffset, String asker) {
        Held held = spans.get(span(blob, compressedOffset));
        if (held == null) {
            return List.of();
        }
        long now = nanoTime.getAsLong();
        held.at.values().removeIf(at -> now - at > KEPT_NANOS);
        List<String> out = new ArrayList<>(held.at.sequencedKeySet().reversed());
        out.remove(asker);
        if (out.size() > 1) {
            java.util.Collections.rotate(out, -(held.named++ % out.size()));
        }
        return out;
    }
}
