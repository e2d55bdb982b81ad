package dev.starling.fuse;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import org.cryptomator.jfuse.api.FileInfo;
import org.cryptomator.jfuse.api.FuseConfig;
import org.cryptomator.jfuse.api.Stat;

/**
 * The struct fields jfuse's API leaves out and a layer needs: {@code st_ino} (hardlinks share one),
 * {@code st_rdev} (device nodes), {@code st_blocks}/{@code st_blksize} (du, cp), and
 * {@code fuse_config.use_ino}. jfuse's own generated bindings write them; we reach its structs
 * through the records' {@code segment()} accessor. Resolved once, at class load, so a jfuse upgrade
 * that moves them fails at mount, loudly, not on the first read.
 */
final class NativeFields {
    private static final String BINDINGS = "org.cryptomator.jfuse.linux.amd64.extr.fuse3.";
    private static final MethodHandle STAT_SEGMENT;
    private static final MethodHandle CONFIG_SEGMENT;
    private static final MethodHandle FILE_INFO_SEGMENT;
    /**
     * {@code struct fuse_file_info} starts with {@code int32_t flags} and then the bit fields
     * {@code writepage:1, direct_io:1, keep_cache:1, …} (the same order since libfuse 2.x);
     * jextract generates no accessors for bit fields.
     */
    private static final long FILE_INFO_BITS_OFFSET = 4;
    private static final int DIRECT_IO_BIT = 1 << 1;
    private static final MethodHandle ST_INO, ST_RDEV, ST_BLOCKS, ST_BLKSIZE, USE_INO;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            MethodType setLong = MethodType.methodType(void.class, MemorySegment.class, long.class);
            Class<?> stat = Class.forName(BINDINGS + "stat");
            ST_INO = lookup.findStatic(stat, "st_ino", setLong);
            ST_RDEV = lookup.findStatic(stat, "st_rdev", setLong);
            ST_BLOCKS = lookup.findStatic(stat, "st_blocks", setLong);
            ST_BLKSIZE = lookup.findStatic(stat, "st_blksize", setLong);
            USE_INO = lookup.findStatic(Class.forName(BINDINGS + "fuse_config"), "use_ino",
                    MethodType.methodType(void.class, MemorySegment.class, int.class));
            STAT_SEGMENT = segmentAccessor("org.cryptomator.jfuse.linux.amd64.StatImpl");
            CONFIG_SEGMENT = segmentAccessor("org.cryptomator.jfuse.linux.amd64.FuseConfigImpl");
            FILE_INFO_SEGMENT = segmentAccessor("org.cryptomator.jfuse.linux.amd64.FileInfoImpl");
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError("this jfuse version does not expose the struct fields Starling "
                    + "needs (st_ino, st_rdev, use_ino): " + e);
        }
    }

    private NativeFields() {
    }

    private static MethodHandle segmentAccessor(String className) throws ReflectiveOperationException {
        var method = Class.forName(className).getDeclaredMethod("segment");
        method.setAccessible(true);
        return MethodHandles.lookup().unreflect(method);
    }

    /** Sets inode, device, and block counts of a stat that jfuse hands us. */
    static void set(Stat stat, long ino, long rdev, long size) {
        try {
            MemorySegment s = (MemorySegment) STAT_SEGMENT.invoke(stat);
            ST_INO.invokeExact(s, ino);
            ST_RDEV.invokeExact(s, rdev);
            ST_BLKSIZE.invokeExact(s, 4096L);
            ST_BLOCKS.invokeExact(s, (size + 4095) / 4096 * 8);
        } catch (Throwable t) {
            throw new IllegalStateException("cannot set stat fields", t);
        }
    }

    /** Makes libfuse report our inode numbers instead of its own. */
    static void useIno(FuseConfig config) {
        try {
            USE_INO.invokeExact((MemorySegment) CONFIG_SEGMENT.invoke(config), 1);
        } catch (Throwable t) {
            throw new IllegalStateException("cannot set use_ino", t);
        }
    }

    /**
     * Reads of this open file bypass the page cache: for the state file, whose size and bytes change
     * while the mount-wide {@code kernel_cache} would keep serving its first version.
     */
    static void directIo(FileInfo fi) {
        try {
            MemorySegment s = ((MemorySegment) FILE_INFO_SEGMENT.invoke(fi)).reinterpret(8);
            int bits = s.get(java.lang.foreign.ValueLayout.JAVA_INT, FILE_INFO_BITS_OFFSET);
            s.set(java.lang.foreign.ValueLayout.JAVA_INT, FILE_INFO_BITS_OFFSET, bits | DIRECT_IO_BIT);
        } catch (Throwable t) {
            throw new IllegalStateException("cannot set direct_io", t);
        }
    }

    /** Linux {@code makedev}. */
    static long makedev(long major, long minor) {
        return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xffL) << 12) | ((major & ~0xfffL) << 32);
    }
}
