package dev.starling.fetch;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** Time that moves only when someone sleeps, which it records instead of waiting. */
final class FakeClock implements FetchClock {
    private volatile long now = 1_000_000_000L;
    final List<Long> sleeps = new CopyOnWriteArrayList<>();

    @Override
    public long nanoTime() {
        return now;
    }

    @Override
    public void sleep(long nanos) {
        sleeps.add(nanos);
        now += nanos;
    }
}
