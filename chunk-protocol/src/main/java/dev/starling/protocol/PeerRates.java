package dev.starling.protocol;

import java.net.InetAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * What one peer (one address) may ask of this node per second: requests, and bytes served. Token
 * buckets holding a second's worth; a request is admitted while both have tokens, and the bytes it
 * was served are taken afterwards (a big answer may leave the bucket in debt, which the next
 * requests wait out). Time is injected so tests never sleep.
 */
final class PeerRates {
    /** Addresses not heard from for this long may be forgotten, so the map stays about as small as the cluster. */
    private static final long FORGET_NANOS = 60_000_000_000L;

    private final long requestsPerSecond;
    private final long bytesPerSecond;
    private final LongSupplier nanoTime;
    private final Map<InetAddress, Bucket> buckets = new ConcurrentHashMap<>();

    /** @param requestsPerSecond 0 for no bound; @param bytesPerSecond 0 for no bound */
    PeerRates(long requestsPerSecond, long bytesPerSecond, LongSupplier nanoTime) {
        this.requestsPerSecond = requestsPerSecond;
        this.bytesPerSecond = bytesPerSecond;
        this.nanoTime = nanoTime;
    }

    /** Milliseconds {@code peer} should wait before asking again, or 0 when this request is admitted (and counted). */
    long admit(InetAddress peer) {
        long now = nanoTime.getAsLong();
        if (buckets.size() > 4096) { // more addresses than any cluster: someone is cycling them
            forgetQuiet();
        }
        Bucket b = buckets.computeIfAbsent(peer, p -> new Bucket(now, requestsPerSecond, bytesPerSecond));
        synchronized (b) {
            b.refill(now, requestsPerSecond, bytesPerSecond);
            long wait = 0;
            if (requestsPerSecond > 0 && b.requests < 1) {
                wait = Math.max(wait, (long) Math.ceil((1 - b.requests) * 1000.0 / requestsPerSecond));
            }
            if (bytesPerSecond > 0 && b.bytes < 0) {
                wait = Math.max(wait, (long) Math.ceil(-b.bytes * 1000.0 / bytesPerSecond));
            }
            if (wait == 0 && requestsPerSecond > 0) {
                b.requests -= 1;
            }
            return wait;
        }
    }

    /** Takes {@code bytes} served to {@code peer} from its bucket. */
    void served(InetAddress peer, long bytes) {
        if (bytesPerSecond == 0) {
            return;
        }
        Bucket b = buckets.get(peer);
        if (b != null) {
            synchronized (b) {
                b.bytes -= bytes;
            }
        }
    }

    /** Drops the buckets of addresses that have been quiet for a minute. */
    void forgetQuiet() {
        long now = nanoTime.getAsLong();
        buckets.values().removeIf(b -> {
            synchronized (b) {
                return now - b.last > FORGET_NANOS;
            }
        });
    }

    int tracked() {
        return buckets.size();
    }

    private static final class Bucket {
        long last;
        double requests;
        double bytes;

        Bucket(long now, long requestsPerSecond, long bytesPerSecond) {
            this.last = now;
            this.requests = requestsPerSecond;
            this.bytes = bytesPerSecond;
        }

        void refill(long now, long requestsPerSecond, long bytesPerSecond) {
            double seconds = (now - last) / 1e9;
            last = now;
            requests = Math.min(requestsPerSecond, requests + seconds * requestsPerSecond);
            bytes = Math.min(bytesPerSecond, bytes + seconds * bytesPerSecond);
        }
    }
}
