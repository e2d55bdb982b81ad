package dev.starling.peer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** A requester's wait through a busy owner, on a fake clock. */
class SwarmWaitTest {
    private final AtomicLong now = new AtomicLong(1_000);

    private SwarmWait wait(Set<String> unusable) {
        return new SwarmWait("me", "owner", id -> !unusable.contains(id), now::get, SwarmWait.PATIENCE.toNanos());
    }

    private static List<String> drain(SwarmWait w) {
        List<String> out = new ArrayList<>();
        for (String id; (id = w.nextHolder()) != null; ) {
            out.add(id);
        }
        return out;
    }

    @Test
    void aRoundAsksTheNamedHoldersOnceEachButNeitherItselfTheOwnerNorAQuarantinedOne() {
        SwarmWait w = wait(Set.of("liar"));
        w.ownerBusy(List.of("a", "me", "owner", "liar", "a", "b"));
        assertEquals(List.of("a", "b"), drain(w));
    }

    @Test
    void aBusyHoldersOwnHoldersJoinTheRoundUpToItsBound() {
        SwarmWait w = wait(Set.of());
        w.ownerBusy(List.of("a"));
        assertEquals("a", w.nextHolder());
        w.named(List.of("c", "d", "a", "e", "f", "g"));
        assertEquals(List.of("c", "d", "e"), drain(w), SwarmWait.HOLDERS_PER_ROUND + " asked per round, each once");
        w.ownerBusy(List.of("a", "b"));
        assertEquals(List.of("a", "b"), drain(w), "the owner's next BUSY starts a new round");
    }

    @Test
    void theOwnerIsAskedAgainAfterItsRetryAfterUntilPatienceEnds() {
        SwarmWait w = wait(Set.of());
        assertEquals(500, w.retryOwnerAfterMillis(500));
        assertEquals(SwarmWait.MIN_RETRY_AFTER_MILLIS, w.retryOwnerAfterMillis(0));
        assertEquals(-1, w.retryOwnerAfterMillis(SwarmWait.MAX_RETRY_AFTER_MILLIS + 1), "over its rate: the next source");
        now.addAndGet(SwarmWait.PATIENCE.toNanos() - TimeUnit.SECONDS.toNanos(1));
        assertEquals(500, w.retryOwnerAfterMillis(500), "a busy owner is sending, not failing: waited for");
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(600));
        assertEquals(-1, w.retryOwnerAfterMillis(500), "past patience: the next source");
    }

    @Test
    void noHolderNamedMeansStraightBackToTheOwner() {
        SwarmWait w = wait(Set.of());
        w.ownerBusy(List.of());
        assertNull(w.nextHolder());
    }
}
