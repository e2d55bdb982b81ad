package dev.starling.fetch;

/**
 * How a node fetches chunks it does not have. Every value is explained, with its default, in
 * docs/configuration.md.
 *
 * @param fetchUnit               at most this many compressed bytes per Range request when adjacent
 *                                missing members are coalesced (a chunk larger than this is still fetched whole)
 * @param maxGap                  bytes between two members that may be fetched (and thrown away) to join them into one request
 * @param prefetch                fetch each layer's prioritized area (before its {@code .prefetch.landmark}) right after mounting
 * @param backgroundFetch         fetch the rest of each layer at low priority until the node has all of it
 * @param backgroundBytesPerSecond cap on background fetching, 0 for none
 * @param backgroundQuietMillis   how long after the last foreground fetch background fetching resumes
 * @param readAheadThreads        parallel fetches for sequential readers' read-ahead
 * @param maxBytesInFlight        compressed bytes all fetches of the node may hold in memory at once
 */
public record FetchOptions(long fetchUnit, long maxGap, boolean prefetch, boolean backgroundFetch,
                           long backgroundBytesPerSecond, long backgroundQuietMillis, int readAheadThreads,
                           long maxBytesInFlight) {
    public static final FetchOptions DEFAULTS = new FetchOptions(2L << 20, 64L << 10, true, true, 100L << 20, 500, 4,
            32L << 20);
    /** The largest fetch unit: a Range request is held in memory whole, and the reader's member limit is 256 MiB. */
    public static final long MAX_FETCH_UNIT = 256L << 20;

    public FetchOptions {
        if (fetchUnit < 1 || fetchUnit > MAX_FETCH_UNIT) {
            throw new IllegalArgumentException("the fetch unit must be 1 byte to 256 MiB, not " + fetchUnit);
        }
        if (backgroundBytesPerSecond < 0) {
            throw new IllegalArgumentException("the background rate must be 0 (no cap) or more, not " + backgroundBytesPerSecond);
        }
        if (maxGap < 0 || backgroundQuietMillis < 0 || readAheadThreads < 1 || maxBytesInFlight < 1) {
            throw new IllegalArgumentException("fetch options out of range: gap " + maxGap + ", quiet " + backgroundQuietMillis
                    + " ms, read-ahead threads " + readAheadThreads + ", bytes in flight " + maxBytesInFlight);
        }
    }

    public FetchOptions withFetchUnit(long bytes) {
        return new FetchOptions(bytes, maxGap, prefetch, backgroundFetch, backgroundBytesPerSecond, backgroundQuietMillis, readAheadThreads, maxBytesInFlight);
    }

    public FetchOptions withPrefetch(boolean on) {
        return new FetchOptions(fetchUnit, maxGap, on, backgroundFetch, backgroundBytesPerSecond, backgroundQuietMillis, readAheadThreads, maxBytesInFlight);
    }

    public FetchOptions withBackgroundFetch(boolean on) {
        return new FetchOptions(fetchUnit, maxGap, prefetch, on, backgroundBytesPerSecond, backgroundQuietMillis, readAheadThreads, maxBytesInFlight);
    }

    public FetchOptions withBackgroundBytesPerSecond(long rate) {
        return new FetchOptions(fetchUnit, maxGap, prefetch, backgroundFetch, rate, backgroundQuietMillis, readAheadThreads, maxBytesInFlight);
    }

    public FetchOptions withBackgroundQuietMillis(long millis) {
        return new FetchOptions(fetchUnit, maxGap, prefetch, backgroundFetch, backgroundBytesPerSecond, millis, readAheadThreads, maxBytesInFlight);
    }
}
