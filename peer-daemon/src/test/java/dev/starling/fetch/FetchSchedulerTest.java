package dev.starling.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.Closeable;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Who may use the network when, on a fake clock: the background rate, the foreground's precedence, the memory budget. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FetchSchedulerTest {
    private static FetchScheduler scheduler(FetchOptions options, FakeClock clock) {
        return new FetchScheduler(options, clock);
    }

    /** Waits until {@code t} is blocked, as a waiting caller is. */
    private static void awaitBlocked(Thread t) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (t.getState() != Thread.State.WAITING && t.getState() != Thread.State.TIMED_WAITING) {
            assertTrue(System.nanoTime() < deadline, "the caller never came to wait");
            Thread.onSpinWait();
        }
    }

    @Test
    void backgroundSpansKeepToTheRate() throws Exception {
        FakeClock clock = new FakeClock();
        try (FetchScheduler s = scheduler(FetchOptions.DEFAULTS.withBackgroundQuietMillis(0).withBackgroundBytesPerSecond(1 << 20), clock)) {
            assertTrue(s.awaitBackgroundTurn(0));
            assertTrue(s.awaitBackgroundTurn(2 << 20), "the first span's turn is now; its 2 MiB book the next 2 s");
            assertTrue(s.awaitBackgroundTurn(512 << 10));
            assertTrue(s.awaitBackgroundTurn(0));
            assertEquals(List.of(TimeUnit.SECONDS.toNanos(2), TimeUnit.MILLISECONDS.toNanos(500)), clock.sleeps,
                    "each span waits what the one before it cost at 1 MiB/s");
        }
    }

    @Test
    void theBackgroundWaitsWhileAForegroundFetchRuns() throws Exception {
        FakeClock clock = new FakeClock();
        try (FetchScheduler s = scheduler(FetchOptions.DEFAULTS.withBackgroundQuietMillis(0).withBackgroundBytesPerSecond(0), clock)) {
            Closeable foreground = s.foreground();
            CompletableFuture<Boolean> turn = new CompletableFuture<>();
            Thread background = Thread.ofPlatform().start(() -> {
                try {
                    turn.complete(s.awaitBackgroundTurn(0));
                } catch (InterruptedException e) {
                    turn.completeExceptionally(e);
                }
            });
            awaitBlocked(background);
            assertTrue(!turn.isDone(), "a reader's fetch goes first");
            foreground.close();
            assertTrue(turn.get(10, TimeUnit.SECONDS), "and the background goes on once it is done");
        }
    }

    @Test
    void fetchBuffersStayWithinTheBudget() throws Exception {
        try (FetchScheduler s = scheduler(FetchOptions.DEFAULTS, new FakeClock())) {
            long budget = FetchOptions.DEFAULTS.maxBytesInFlight();
            Closeable first = s.holdBytes(budget * 3 / 4);
            CompletableFuture<Closeable> second = new CompletableFuture<>();
            Thread waiter = Thread.ofPlatform().start(() -> {
                try {
                    second.complete(s.holdBytes(budget / 2));
                } catch (java.io.IOException e) {
                    second.completeExceptionally(e);
                }
            });
            awaitBlocked(waiter);
            assertTrue(!second.isDone(), "3/4 and 1/2 of the budget do not fit at once");
            first.close();
            second.get(10, TimeUnit.SECONDS).close();
            try (Closeable whole = s.holdBytes(budget * 4)) {
                // larger than the budget: it gets the budget to itself rather than never
            }
        }
    }
}
