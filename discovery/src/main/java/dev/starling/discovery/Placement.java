package dev.starling.discovery;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Who owns a span of a blob: rendezvous (highest random weight) hashing of (blob digest, span
 * number) over the live members, members of the requester's zone first. The unit of ownership is a
 * span of the fetch unit, not a chunk, so an owner fetches a directory of small files in one Range
 * request as a single node would. A member leaving moves only the spans it owned; joining takes
 * about 1/N of each other member's.
 */
public final class Placement {
    private Placement() {
    }

    /** The span number of a compressed offset: which aligned fetch-unit span of the blob it falls in. */
    public static long span(long compressedOffset, long fetchUnit) {
        return compressedOffset / fetchUnit;
    }

    /**
     * Members in the order to ask for span {@code span} of {@code blobDigest}: the requester's zone
     * first (by weight), then the others (by weight). The first is the owner; the next, where a
     * hedged request goes.
     */
    public static List<Member> owners(String blobDigest, long span, List<Member> members, String zone) {
        List<Member> ordered = new ArrayList<>(members);
        ordered.sort(Comparator.comparing((Member m) -> !m.zone().equals(zone))
                .thenComparing(Comparator.comparingLong((Member m) -> weight(blobDigest, span, m.nodeId())).reversed())
                .thenComparing(Member::nodeId));
        return ordered;
    }

    /** The member's weight for a span: a 64-bit hash of (blob, span, node), mixed so nearby spans spread. */
    static long weight(String blobDigest, long span, String nodeId) {
        long h = 0xcbf29ce484222325L; // FNV-1a, then a murmur3 finaliser
        for (byte b : blobDigest.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001b3L;
        }
        h = (h ^ span) * 0x100000001b3L;
        for (byte b : nodeId.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001b3L;
        }
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        h ^= h >>> 33;
        return h;
    }
}
