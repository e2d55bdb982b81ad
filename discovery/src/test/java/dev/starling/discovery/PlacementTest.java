package dev.starling.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Rendezvous placement: the same answer everywhere, even spread, minimal movement, zone first. */
class PlacementTest {
    static final String BLOB = "sha256:" + "ab".repeat(32);

    static List<Member> members(int n, String zone) {
        List<Member> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new Member("node-" + zone + i, new InetSocketAddress("127.0.0.1", 7000 + i), zone));
        }
        return out;
    }

    @Test
    void spansSpreadEvenlyOverMembers() {
        List<Member> eight = members(8, "a");
        Map<String, Integer> owned = new HashMap<>();
        int spans = 8000;
        for (long s = 0; s < spans; s++) {
            owned.merge(Placement.owners(BLOB, s, eight, "a").getFirst().nodeId(), 1, Integer::sum);
        }
        assertEquals(8, owned.size());
        int max = owned.values().stream().mapToInt(Integer::intValue).max().orElseThrow();
        assertTrue(max < spans / 8 * 1.15, "the busiest member owns " + max + " of " + spans + " spans: " + owned);
    }

    @Test
    void aMemberLeavingMovesOnlyItsOwnSpans() {
        List<Member> eight = members(8, "a");
        List<Member> seven = new ArrayList<>(eight);
        Member gone = seven.remove(3);
        int moved = 0;
        for (long s = 0; s < 4000; s++) {
            Member before = Placement.owners(BLOB, s, eight, "a").getFirst();
            Member after = Placement.owners(BLOB, s, seven, "a").getFirst();
            if (!before.equals(after)) {
                assertEquals(gone, before, "span " + s + " moved though its owner stayed");
                assertEquals(Placement.owners(BLOB, s, eight, "a").get(1), after, "it goes to its next owner");
                moved++;
            }
        }
        assertTrue(moved > 300 && moved < 700, "about an eighth moved: " + moved);
    }

    @Test
    void theRequestersZoneComesFirstAndEveryNodeAgrees() {
        List<Member> all = new ArrayList<>(members(4, "a"));
        all.addAll(members(4, "b"));
        for (long s = 0; s < 100; s++) {
            List<Member> fromA = Placement.owners(BLOB, s, all, "a");
            assertTrue(fromA.subList(0, 4).stream().allMatch(m -> m.zone().equals("a")));
            List<Member> shuffled = new ArrayList<>(all);
            java.util.Collections.shuffle(shuffled, new java.util.Random(s));
            assertEquals(fromA, Placement.owners(BLOB, s, shuffled, "a"), "the order of the member list does not matter");
        }
    }

    @Test
    void aSpanIsTheAlignedFetchUnit() {
        assertEquals(0, Placement.span(0, 2 << 20));
        assertEquals(0, Placement.span((2 << 20) - 1, 2 << 20));
        assertEquals(1, Placement.span(2 << 20, 2 << 20));
    }
}
