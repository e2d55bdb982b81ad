package dev.starling.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Upload slots on a fake clock: how many answers at once, and when a refused requester should come back. */
class UploadSlotsTest {
    private final AtomicLong now = new AtomicLong(5_000);

    @Test
    void pastItsSlotsARequestIsRefusedUntilOneIsReleased() {
        UploadSlots slots = new UploadSlots(2, now::get);
        long a = slots.tryAcquire();
        long b = slots.tryAcquire();
        assertTrue(a >= 0 && b >= 0);
        assertEquals(-1, slots.tryAcquire());
        slots.release(a);
        assertTrue(slots.tryAcquire() >= 0);
        assertEquals(2, slots.taken());
    }

    @Test
    void noBoundServesEveryone() {
        UploadSlots slots = new UploadSlots(0, now::get);
        for (int i = 0; i < 1000; i++) {
            assertTrue(slots.tryAcquire() >= 0);
        }
        assertThrows(IllegalArgumentException.class, () -> new UploadSlots(-1, now::get));
    }

    /** Four slots each held {@code millis}, many times over: the retry-after it then gives. */
    private int retryAfterHolding(long millis) {
        UploadSlots slots = new UploadSlots(4, now::get);
        for (int i = 0; i < 50; i++) {
            long s = slots.tryAcquire();
            now.addAndGet(TimeUnit.MILLISECONDS.toNanos(millis));
            slots.release(s);
        }
        return slots.retryAfterMillis();
    }

    @Test
    void aRefusedRequesterComesBackAboutWhenTheFirstSlotFrees() {
        int retry = retryAfterHolding(400);
        assertTrue(retry >= 99 && retry <= 100, "slots held 400 ms, four of them: one frees about every 100 ms, not " + retry);
        assertEquals(UploadSlots.MIN_RETRY_AFTER_MILLIS, retryAfterHolding(2), "a fast uplink: soon, but not a storm");
        assertEquals(UploadSlots.MAX_RETRY_AFTER_MILLIS, retryAfterHolding(60_000),
                "a slow uplink: at most a second, below a rate limit's retry-after");
    }
}
