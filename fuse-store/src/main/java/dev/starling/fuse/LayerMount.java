package dev.starling.fuse;

import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.TocIndex;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;
import org.cryptomator.jfuse.api.Fuse;
import org.cryptomator.jfuse.api.FuseBuilder;
import org.cryptomator.jfuse.api.FuseMountFailedException;

/**
 * A mounted layer: libfuse3 found explicitly (Debian ships no unversioned libfuse3.so), read-only,
 * {@code kernel_cache} so re-reads come from the page cache (layers are immutable), never
 * {@code direct_io} (it breaks mmap, which model loaders use), and a stale mount left by a killed
 * process cleared first. Closing unmounts.
 *
 * <p>A layer's tree never changes while it is mounted, so the kernel may keep what it looked up,
 * names that are not there included, for as long as the mount lasts ({@link #IMMUTABLE_TREE}); a
 * remount is a new superblock and caches nothing of the old one. The state file changes, but it is
 * opened {@code direct_io}: its bytes are always read afresh, only its {@code stat} size may lag.
 */
public final class LayerMount implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(LayerMount.class.getName());
    static final String LIBFUSE = "/usr/lib/x86_64-linux-gnu/libfuse3.so.3";
    /** The kernel's entry, attribute and negative-lookup caching for a tree that cannot change (libfuse's default: 1 s, 1 s, none). */
    static final String IMMUTABLE_TREE = "entry_timeout=86400,attr_timeout=86400,negative_timeout=86400";

    private final Fuse fuse;
    private final Path mountPoint;

    private LayerMount(Fuse fuse, Path mountPoint) {
        this.fuse = fuse;
        this.mountPoint = mountPoint;
    }

    public static LayerMount mount(TocIndex index, ChunkSource chunks, Path mountPoint, String name)
            throws IOException {
        return mount(index, chunks, mountPoint, name, null, MountOptions.DEFAULTS);
    }

    /** Mounts one layer; {@code state} (may be null) is shown as its state file. */
    public static LayerMount mount(TocIndex index, ChunkSource chunks, Path mountPoint, String name, StateFile state,
                                   MountOptions options) throws IOException {
        checkOptionValue(name);
        return mount(errno -> new LayerFileSystem(index, chunks, errno, state, options), mountPoint, "starling:" + name,
                options, "ro", IMMUTABLE_TREE);
    }

    /**
     * Mounts {@code fileSystem} (made for the builder's errno) with what every Starling mount has:
     * {@code options}' security flags and threads, {@code allow_other}, {@code default_permissions}
     * and {@code kernel_cache}, plus {@code extra} options; a dead mount there is cleared first.
     */
    static LayerMount mount(java.util.function.Function<org.cryptomator.jfuse.api.Errno, org.cryptomator.jfuse.api.FuseOperations> fileSystem,
                            Path mountPoint, String fsName, MountOptions options, String... extra) throws IOException {
        clearStaleMount(mountPoint);
        Files.createDirectories(mountPoint);
        FuseBuilder builder = FuseBuilder.getSupported();
        if (Files.exists(Path.of(LIBFUSE))) {
            builder.setLibraryPath(LIBFUSE);
        }
        Fuse fuse = builder.build(fileSystem.apply(builder.errno()));
        java.util.List<String> flags = new java.util.ArrayList<>();
        for (String option : extra) {
            flags.add("-o");
            flags.add(option);
        }
        flags.addAll(java.util.List.of("-o", options.securityFlags(),
                "-o", "default_permissions", "-o", "allow_other",
                "-o", "kernel_cache", "-o", "max_threads=" + options.maxThreads(),
                "-o", "fsname=" + fsName, "-o", "subtype=" + MountTable.LAYER_SUBTYPE));
        try {
            fuse.mount("starling", mountPoint, flags.toArray(String[]::new));
        } catch (FuseMountFailedException e) {
            throw new IOException("cannot mount " + fsName + " at " + mountPoint + ": " + e.getMessage(), e);
        }
        setKernelReadAhead(mountPoint, options.kernelReadAheadBytes());
        return new LayerMount(fuse, mountPoint);
    }

    /**
     * A value that goes into {@code -o name=value}: libfuse splits options at commas, so a value
     * made of outside input (an image name, a digest) could add options of its own ({@code suid}).
     * Only the characters of references and digests pass.
     */
    static void checkOptionValue(String value) {
        if (value.isEmpty() || !value.chars().allMatch(ch -> ch < 128 && (Character.isLetterOrDigit(ch) || "@:/._-+".indexOf(ch) >= 0))) {
            throw new IllegalArgumentException("mount name \"" + value + "\" has characters a mount option cannot carry");
        }
    }

    /**
     * FUSE's init can only lower the kernel's readahead below the 128 KiB default, so it is raised
     * where an administrator would: {@code /sys/class/bdi/MAJOR:MINOR/read_ahead_kb}. Best effort.
     */
    private static void setKernelReadAhead(Path mountPoint, long bytes) {
        try {
            String device = MountTable.at(mountPoint).orElseThrow(() -> new IOException("not in the mount table"))
                    .device();
            Files.writeString(Path.of("/sys/class/bdi", device, "read_ahead_kb"), Long.toString(bytes >> 10));
        } catch (IOException | RuntimeException e) {
            LOG.warning("cannot set the kernel readahead of " + mountPoint + " (sequential reads are slower): " + e);
        }
    }

    /** A mount whose daemon died answers "Transport endpoint is not connected"; lazily unmount it. */
    static void clearStaleMount(Path mountPoint) {
        if (MountTable.isDead(mountPoint)) {
            MountTable.lazyUnmount(mountPoint);
        }
    }

    public Path mountPoint() {
        return mountPoint;
    }

    /** Unmounts; when a process still holds files open, detaches the mount lazily (it goes when they close). */
    @Override
    public void close() throws IOException {
        try {
            fuse.close();
        } catch (TimeoutException busy) {
            MountTable.lazyUnmount(mountPoint);
            try {
                fuse.close();
            } catch (TimeoutException e) {
                throw new IOException("unmounting " + mountPoint + " timed out", e);
            }
        }
    }
}
