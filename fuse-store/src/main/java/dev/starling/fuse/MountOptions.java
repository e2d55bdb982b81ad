package dev.starling.fuse;

/**
 * How a layer is served.
 *
 * @param readAheadBytes how far ahead of a sequential reader chunks are asked for (in parallel); 0 turns it off
 * @param maxThreads     libfuse worker threads: a read waiting on the network holds one, so a slow
 *                       fetch must not leave none for reads that the caches can answer
 * @param maxBackground  requests the kernel keeps in flight (its readahead among them); its default of 12
 *                       caps how far a sequential reader's requests overlap
 * @param kernelReadAheadBytes the kernel's page-cache readahead for the mount (its bdi {@code read_ahead_kb});
 *                       the kernel's 128 KiB default splits a sequential read into twice as many
 *                       FUSE requests as 1 MiB, at about half the throughput from the memory tier
 */
public record MountOptions(long readAheadBytes, int maxThreads, int maxBackground, long kernelReadAheadBytes) {
    public static final MountOptions DEFAULTS = new MountOptions(32L << 20, 64, 64, 1L << 20);

    public MountOptions {
        if (readAheadBytes < 0 || maxThreads < 1 || maxBackground < 1 || kernelReadAheadBytes < 0) {
            throw new IllegalArgumentException("read-ahead " + readAheadBytes + ", max threads " + maxThreads
                    + ", max background " + maxBackground + " and kernel read-ahead " + kernelReadAheadBytes
                    + " must be positive");
        }
    }

    public MountOptions withReadAheadBytes(long bytes) {
        return new MountOptions(bytes, maxThreads, maxBackground, kernelReadAheadBytes);
    }
}
