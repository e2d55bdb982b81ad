package dev.starling.peer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Who holds a span, as a server learns it: most recent first, bounded, and forgotten in time. */
class SpanHoldersTest {
    static final long UNIT = 2L << 20;
    static final String BLOB = "sha256:" + "ab".repeat(32);

    @Test
    void holdersOfASpanAreNamedMostRecentFirstWithoutTheAsker() {
        AtomicLong now = new AtomicLong(1);
        SpanHolders h = new SpanHolders(UNIT, now::get);
        h.held(BLOB, 10, "a:1");
        h.held(BLOB, UNIT - 1, "b:1"); // the same 2 MiB span
        h.held(BLOB, UNIT, "c:1"); // the next one
        assertEquals(List.of("b:1", "a:1"), h.holders(BLOB, 5000, "x:1"));
        assertEquals(List.of("a:1"), h.holders(BLOB, 5000, "b:1"), "a node is not sent to itself");
        assertEquals(List.of("c:1"), h.holders(BLOB, UNIT + 7, "x:1"));
        assertEquals(List.of(), h.holders("sha256:" + "cd".repeat(32), 10, "x:1"), "another blob's span is another span");
        SpanHolders again = new SpanHolders(UNIT, now::get);
        again.held(BLOB, 10, "a:1");
        again.held(BLOB, 10, "b:1");
        again.held(BLOB, 10, "a:1");
        assertEquals(List.of("a:1", "b:1"), again.holders(BLOB, 10, "x:1"), "a holder seen again is the most recent");
    }

    @Test
    void eachAnswerStartsOneHolderFurtherSoRequestersSpreadOverThem() {
        AtomicLong now = new AtomicLong(1);
        SpanHolders h = new SpanHolders(UNIT, now::get);
        for (String id : List.of("a:1", "b:1", "c:1")) {
            h.held(BLOB, 0, id);
        }
        assertEquals(List.of("c:1", "b:1", "a:1"), h.holders(BLOB, 0, "x:1"));
        assertEquals(List.of("b:1", "a:1", "c:1"), h.holders(BLOB, 0, "y:1"));
        assertEquals(List.of("a:1", "c:1", "b:1"), h.holders(BLOB, 0, "z:1"));
        java.util.Map<String, Integer> firsts = new java.util.HashMap<>();
        for (int i = 0; i < 30; i++) {
            firsts.merge(h.holders(BLOB, 0, "r" + i + ":1").getFirst(), 1, Integer::sum);
        }
        assertEquals(java.util.Map.of("a:1", 10, "b:1", 10, "c:1", 10), firsts, "30 requesters, 3 holders: 10 sent to each first");
    }

    @Test
    void aSpanRemembersABoundedNumberAndForgetsHoldersInTenMinutes() {
        AtomicLong now = new AtomicLong(1);
        SpanHolders h = new SpanHolders(UNIT, now::get);
        for (int i = 0; i < SpanHolders.PER_SPAN + 40; i++) {
            h.held(BLOB, 0, "node-" + i + ":1");
        }
        List<String> named = h.holders(BLOB, 0, "x:1");
        assertEquals(SpanHolders.PER_SPAN, named.size());
        assertEquals("node-" + (SpanHolders.PER_SPAN + 39) + ":1", named.getFirst());
        now.addAndGet(SpanHolders.KEPT_NANOS + 1);
        h.held(BLOB, 0, "fresh:1");
        assertEquals(List.of("fresh:1"), h.holders(BLOB, 0, "x:1"), "nodes evict and leave: an old name is not given");
    }
}
