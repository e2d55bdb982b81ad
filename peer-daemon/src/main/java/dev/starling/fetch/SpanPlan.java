package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.TocIndex;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * Which chunks one request fetches: a pure function of the TOC and the options. Starting from the
 * chunk a reader needs, the chunks after it in blob order join while they are wanted, no more than
 * the gap apart, and the span stays within the fetch unit, so a directory of small files arrives in
 * one Range request rather than one per file.
 */
final class SpanPlan {
    /** Compressed bytes a chunk's span may hold beyond twice what it decodes to before it is read piece by piece. */
    static final long STREAM_SLACK = 64L << 10;
    /** Chunks after a member's first that are looked at to tell whether the member is needed whole. */
    static final int MAX_SIBLINGS = 4096;

    private SpanPlan() {
    }

    /**
     * The chunks to fetch with chunk {@code first}, {@code first} included, in blob order: the wanted
     * ones after it within the unit, and the wanted ones before it in its member.
     *
     * @param stopAt  no chunk starting at or after this compressed offset joins
     * @param wanted  whether a chunk may join (not local, not fetched by someone else)
     */
    public static List<Chunk> plan(TocIndex index, int first, long unit, long maxGap, long stopAt, IntPredicate wanted) {
        Chunk c = index.chunkAt(first);
        List<Chunk> span = new ArrayList<>();
        span.add(c);
        if (oversized(c) && !(c.compressedLength() <= unit && memberNeeded(index, first))) {
            return span;
        }
        long start = c.compressedOffset();
        long end = c.compressedEnd();
        for (int k = first + 1; k < index.chunkTotal(); k++) {
            Chunk next = index.chunkAt(k);
            if (next == null) {
                continue; // a replaced entry's chunk: its bytes may be spanned, never decoded
            }
            boolean inSpan = next.compressedEnd() <= end; // a sibling in a member the span holds already costs nothing
            if (next.compressedOffset() >= stopAt || next.compressedOffset() - end > maxGap
                    || Math.max(end, next.compressedEnd()) - start > unit
                    || !inSpan && oversized(next) && !memberNeeded(index, k) || !wanted.test(k)) { // (within the unit: checked above)
                break;
            }
            span.add(next);
            end = Math.max(end, next.compressedEnd());
        }
        // the wanted chunks before it in its member (small files share members) come at no cost in
        // bytes; fetched later, they would cost the member again. A member larger than the unit (a
        // hostile TOC's) is not read whole for them
        for (int k = first - 1; k >= 0 && c.compressedLength() <= unit; k--) {
            Chunk sibling = index.chunkAt(k);
            if (sibling == null) {
                continue;
            }
            if (sibling.compressedOffset() != c.compressedOffset()) {
                break;
            }
            if (wanted.test(k)) {
                span.addFirst(sibling);
            }
        }
        return span;
    }

    /**
     * Whether the member that chunk {@code i} starts in is needed whole by the chunks after it in it:
     * small files share members, and the first of them needs a few bytes of a member its siblings
     * need all of. Fetched alone, piece by piece, it would cost the member's first bytes once more
     * when the siblings are fetched. Only asked of members within the fetch unit: a member larger
     * than that (a hostile TOC's one-byte files spread over a huge member) is still read piece by piece.
     */
    static boolean memberNeeded(TocIndex index, int i) {
        Chunk first = index.chunkAt(i);
        long needed = first.innerOffset() + first.size();
        for (int k = i + 1; k < index.chunkTotal() && k <= i + MAX_SIBLINGS; k++) { // bounded: a TOC may list millions
            Chunk sibling = index.chunkAt(k);
            if (sibling == null) {
                continue;
            }
            if (sibling.compressedOffset() != first.compressedOffset()) {
                break;
            }
            needed = Math.max(needed, sibling.innerOffset() + sibling.size());
        }
        return first.compressedLength() <= 2 * needed + STREAM_SLACK;
    }

    /**
     * A chunk whose span is much longer than the bytes it needs out of it: only a hostile or odd TOC
     * makes one (a one-byte file at an inner offset of a member that runs to the TOC), and reading
     * the whole span for it would hold up to the member limit (256 MiB) per reader.
     */
    static boolean oversized(Chunk c) {
        long needed = c.innerOffset() + c.size();
        return c.compressedLength() > 2 * needed + STREAM_SLACK;
    }
}
