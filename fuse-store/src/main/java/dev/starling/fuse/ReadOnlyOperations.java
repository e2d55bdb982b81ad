package dev.starling.fuse;

import java.nio.ByteBuffer;
import java.util.EnumSet;
import java.util.Set;
import java.util.function.IntSupplier;
import java.util.logging.Logger;
import org.cryptomator.jfuse.api.DirFiller;
import org.cryptomator.jfuse.api.Errno;
import org.cryptomator.jfuse.api.FileInfo;
import org.cryptomator.jfuse.api.FuseConfig;
import org.cryptomator.jfuse.api.FuseConnInfo;
import org.cryptomator.jfuse.api.FuseOperations;
import org.cryptomator.jfuse.api.Stat;
import org.cryptomator.jfuse.api.Statvfs;
import org.cryptomator.jfuse.api.TimeSpec;

/**
 * What every Starling file system shares: the read operations, each guarded so that a failure no
 * one foresaw (a bug, a hostile TOC deeper than a stack, memory running out) fails that one call
 * with EIO and is logged ({@link UnexpectedFailures}) instead of escaping into libfuse, which would
 * end the process and every mount it serves; EROFS for every write; and the connection settings
 * at init (our inode numbers, how many requests the kernel keeps in flight).
 */
abstract class ReadOnlyOperations implements FuseOperations {
    static final Set<Operation> READ_OPERATIONS = Set.copyOf(EnumSet.of(Operation.INIT, Operation.GET_ATTR,
            Operation.READLINK, Operation.OPEN, Operation.READ, Operation.RELEASE, Operation.OPEN_DIR, Operation.READ_DIR,
            Operation.RELEASE_DIR, Operation.STATFS, Operation.GET_XATTR, Operation.LIST_XATTR));

    protected final Errno errno;
    protected final MountOptions options;
    private final UnexpectedFailures unexpected;

    ReadOnlyOperations(Errno errno, MountOptions options, Logger log) {
        this.errno = errno;
        this.options = options;
        this.unexpected = new UnexpectedFailures(log, errno);
    }

    @Override
    public final Errno errno() {
        return errno;
    }

    @Override
    public Set<Operation> supportedOperations() {
        return READ_OPERATIONS;
    }

    @Override
    public final void init(FuseConnInfo conn, FuseConfig config) {
        NativeFields.useIno(config);
        conn.setMaxBackground(options.maxBackground());
        conn.setCongestionThreshold(Math.max(1, options.maxBackground() * 3 / 4));
    }

    /** {@code call}'s answer, or EIO (logged) when it throws anything at all. */
    final int guarded(String operation, String path, IntSupplier call) {
        try {
            return call.getAsInt();
        } catch (Throwable t) {
            return unexpected.answer(operation, path, t);
        }
    }

    abstract int doGetattr(String path, Stat stat, FileInfo fi);

    abstract int doReadlink(String path, ByteBuffer buf, long len);

    abstract int doOpen(String path, FileInfo fi);

    abstract int doRead(String path, ByteBuffer buf, long size, long offset, FileInfo fi);

    abstract int doRelease(String path, FileInfo fi);

    abstract int doOpendir(String path, FileInfo fi);

    abstract int doReaddir(String path, DirFiller filler, long offset, FileInfo fi, int flags);

    int doReleasedir(String path, FileInfo fi) {
        return 0;
    }

    abstract int doStatfs(String path, Statvfs statvfs);

    abstract int doGetxattr(String path, String name, ByteBuffer value);

    abstract int doListxattr(String path, ByteBuffer list);

    @Override
    public final int getattr(String path, Stat stat, FileInfo fi) {
        return guarded("getattr", path, () -> doGetattr(path, stat, fi));
    }

    @Override
    public final int readlink(String path, ByteBuffer buf, long len) {
        return guarded("readlink", path, () -> doReadlink(path, buf, len));
    }

    @Override
    public final int open(String path, FileInfo fi) {
        return guarded("open", path, () -> doOpen(path, fi));
    }

    @Override
    public final int read(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        return guarded("read", path, () -> doRead(path, buf, size, offset, fi));
    }

    @Override
    public final int release(String path, FileInfo fi) {
        return guarded("release", path, () -> doRelease(path, fi));
    }

    @Override
    public final int opendir(String path, FileInfo fi) {
        return guarded("opendir", path, () -> doOpendir(path, fi));
    }

    @Override
    public final int readdir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
        return guarded("readdir", path, () -> doReaddir(path, filler, offset, fi, flags));
    }

    @Override
    public final int releasedir(String path, FileInfo fi) {
        return guarded("releasedir", path, () -> doReleasedir(path, fi));
    }

    @Override
    public final int statfs(String path, Statvfs statvfs) {
        return guarded("statfs", path, () -> doStatfs(path, statvfs));
    }

    @Override
    public final int getxattr(String path, String name, ByteBuffer value) {
        return guarded("getxattr", path, () -> doGetxattr(path, name, value));
    }

    @Override
    public final int listxattr(String path, ByteBuffer list) {
        return guarded("listxattr", path, () -> doListxattr(path, list));
    }

    // Nothing Starling serves can be written. A mount that is not read-only (the store's: creating
    // `use` must reach it) refuses each write here instead of by the kernel.

    @Override
    public int create(String path, int mode, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public int rmdir(String path) {
        return -errno.erofs();
    }

    @Override
    public final int write(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public final int mkdir(String path, int mode) {
        return -errno.erofs();
    }

    @Override
    public final int unlink(String path) {
        return -errno.erofs();
    }

    @Override
    public final int symlink(String linkname, String target) {
        return -errno.erofs();
    }

    @Override
    public final int rename(String oldpath, String newpath, int flags) {
        return -errno.erofs();
    }

    @Override
    public final int chmod(String path, int mode, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public final int chown(String path, int uid, int gid, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public final int truncate(String path, long size, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public final int setxattr(String path, String name, ByteBuffer value, int flags) {
        return -errno.erofs();
    }

    @Override
    public final int removexattr(String path, String name) {
        return -errno.erofs();
    }

    @Override
    public final int utimens(String path, TimeSpec atime, TimeSpec mtime, FileInfo fi) {
        return -errno.erofs();
    }
}
