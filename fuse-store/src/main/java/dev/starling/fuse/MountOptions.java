package dev.starling.fuse;

/**
 * How a layer is served.
 *
 * @param readAheadBytes how far ahead of a sequential reader chunks are asked for (in parallel); 0 turns it off
 * @param maxThreads     libfuse worker threads: a read waiting on the network holds one, so a slow
 *                       fetch must not leave none for reads that the caches can answer
 * @param maxBackground  requests the kernel keeps in flight (its readahead among them); its default of 12
 *                       caps how far a sequential reader's requests overlap
 */
public record MountOptions(long readAheadBytes, int maxThreads, int maxBackground) {
    public static final MountOptions DEFAULTS = new MountOptions(32L << 20, 64, 64);

    public MountOptions {
        if (readAheadBytes < 0 || maxThreads < 1 || maxBackground < 1) {
            throw new IllegalArgumentException("read-ahead " + readAheadBytes + ", max threads " + maxThreads
                    + " and max background " + maxBackground + " must be positive");
        }
    }

    public MountOptions withReadAheadBytes(long bytes) {
        return new MountOptions(bytes, maxThreads, maxBackground);
    }
}
