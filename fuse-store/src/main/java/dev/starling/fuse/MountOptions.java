package dev.starling.fuse;

/**
 * How a layer is served.
 *
 * @param readAheadBytes how far ahead of a sequential reader chunks are asked for (in parallel); 0 turns it off
 * @param maxThreads     libfuse worker threads: a read waiting on the network holds one
 * @param reservedThreads threads remote reads may never take, so that a wedged registry leaves
 *                       some for metadata and for reads the caches answer (a remote read beyond
 *                       {@code maxThreads - reservedThreads} fails at once with EIO)
 * @param allowSetuidAndDevices mount without {@code nosuid,nodev}: only for images trusted as much
 *                       as the host (a setuid-root binary or a device node of an image would
 *                       otherwise act on the host for any local user)
 * @param maxBackground  requests the kernel keeps in flight (its readahead among them); its default of 12
 *                       caps how far a sequential reader's requests overlap
 * @param kernelReadAheadBytes the kernel's page-cache readahead for the mount (its bdi {@code read_ahead_kb});
 *                       the kernel's 128 KiB default splits a sequential read into twice as many
 *                       FUSE requests as 1 MiB, at about half the throughput from the memory tier
 */
public record MountOptions(long readAheadBytes, int maxThreads, int maxBackground, long kernelReadAheadBytes,
                           int reservedThreads, boolean allowSetuidAndDevices) {
    public static final MountOptions DEFAULTS = new MountOptions(32L << 20, 256, 64, 1L << 20, 16, false);

    public MountOptions {
        if (readAheadBytes < 0 || maxThreads < 2 || maxBackground < 1 || kernelReadAheadBytes < 0
                || reservedThreads < 1 || reservedThreads >= maxThreads) {
            throw new IllegalArgumentException("read-ahead " + readAheadBytes + ", max threads " + maxThreads
                    + ", max background " + maxBackground + ", kernel read-ahead " + kernelReadAheadBytes
                    + " and reserved threads " + reservedThreads + " are out of range");
        }
    }

    /** FUSE threads a read may hold while it waits on the network; the rest answer metadata and local reads. */
    public int remoteReadThreads() {
        return maxThreads - reservedThreads;
    }

    public MountOptions withReadAheadBytes(long bytes) {
        return new MountOptions(bytes, maxThreads, maxBackground, kernelReadAheadBytes, reservedThreads, allowSetuidAndDevices);
    }

    public MountOptions withThreads(int max, int reserved) {
        return new MountOptions(readAheadBytes, max, maxBackground, kernelReadAheadBytes, reserved, allowSetuidAndDevices);
    }

    public MountOptions withSetuidAndDevices(boolean allow) {
        return new MountOptions(readAheadBytes, maxThreads, maxBackground, kernelReadAheadBytes, reservedThreads, allow);
    }

    /** The kernel's mount flags for what an image may not do on the host, unless the caller trusts the image. */
    public String securityFlags() {
        return allowSetuidAndDevices ? "suid,dev" : "nosuid,nodev";
    }
}
