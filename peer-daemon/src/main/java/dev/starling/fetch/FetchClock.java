package dev.starling.fetch;

/**
 * Time as the fetch policy sees it (the scheduler's quiet time and rate, the background fetch's
 * pauses between retries): read and waited on through this, so tests drive the policy with a fake
 * clock instead of sleeping.
 */
interface FetchClock {
    long nanoTime();

    /** Waits {@code nanos}; interrupted when the node closes. */
    void sleep(long nanos) throws InterruptedException;

    FetchClock SYSTEM = new FetchClock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public void sleep(long nanos) throws InterruptedException {
            java.util.concurrent.TimeUnit.NANOSECONDS.sleep(nanos);
        }
    };
}
