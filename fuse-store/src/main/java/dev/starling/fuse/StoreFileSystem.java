package dev.starling.fuse;

import dev.starling.fuse.HeldLayers.Opened;
import dev.starling.fuse.StorePath.BadName;
import dev.starling.fuse.StorePath.Where;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.LongSupplier;
import java.util.logging.Logger;
import org.cryptomator.jfuse.api.DirFiller;
import org.cryptomator.jfuse.api.Errno;
import org.cryptomator.jfuse.api.FileInfo;
import org.cryptomator.jfuse.api.Stat;
import org.cryptomator.jfuse.api.Statvfs;

/**
 * An Additional Layer Store for containers/storage (CRI-O, Podman), the tree stargz-store serves
 * (compat doc section 2.3): {@code /<base64(image ref)>/<key>/{diff,info,blob,use}}, where the key
 * is a layer's TOC digest (containers/image 5.31 and later) or its compressed digest (before). A
 * lookup of {@code diff}, {@code info} or {@code blob} opens the layer through {@link LayerSource};
 * {@code diff} is then the layer's tree ({@link LayerFileSystem}, inode numbers of its own),
 * {@code blob} its compressed bytes. Creating {@code use} counts a user and {@code rmdir} of the
 * layer directory lets one go (both answer ENOENT, as containers/storage expects); a layer with
 * no users and no open files is released {@code ttl} after it was last used ({@link #sweep}).
 * A name that is not base64 or not a digest gets EINVAL; an unknown image or a layer that is not
 * eStargz ENOENT, so the runtime pulls it the ordinary way; any other failure EIO, logged.
 * Nothing here can be written.
 */
public final class StoreFileSystem extends ReadOnlyOperations {
    private static final Logger LOG = Logger.getLogger(StoreFileSystem.class.getName());
    private static final long ROOT_INO = 1;
    /** Inode numbers of a layer's own files (info, blob, its directory), above any TOC node's in its 2^32 block. */
    private static final long INFO_INO = 0xFFFF_FFF0L, BLOB_INO = 0xFFFF_FFF1L, KEY_DIR_INO = 0xFFFF_FFF2L;
    private static final Set<Operation> OPERATIONS;

    static {
        // not a read-only mount (creating `use` must reach us), so every write is refused here
        EnumSet<Operation> ops = EnumSet.copyOf(READ_OPERATIONS);
        ops.addAll(EnumSet.of(Operation.CREATE, Operation.RMDIR, Operation.MKDIR, Operation.UNLINK, Operation.SYMLINK,
                Operation.RENAME, Operation.CHMOD, Operation.CHOWN, Operation.TRUNCATE, Operation.WRITE, Operation.SET_XATTR,
                Operation.REMOVE_XATTR, Operation.UTIMENS));
        OPERATIONS = Set.copyOf(ops);
    }

    private final StorePath paths;
    private final HeldLayers held;
    private final Instant mountedAt = Instant.now();

    /**
     * @param ttl      how long a layer stays open after its last user and last open file
     * @param nanoTime the clock {@link #sweep} reads ({@code System::nanoTime}; tests pass their own)
     */
    public StoreFileSystem(LayerSource layers, Errno errno, MountOptions options, Duration ttl, LongSupplier nanoTime) {
        super(errno, options, LOG);
        this.paths = new StorePath(layers::checkReference);
        this.held = new HeldLayers((id, slot) -> {
            ServedLayer layer = layers.open(id.ref(), id.key());
            return new Opened(layer, new LayerFileSystem(layer.index(), layer.chunks(), errno, layer.state(), options, slot << 32), slot);
        }, ttl, nanoTime);
    }

    @Override
    public Set<Operation> supportedOperations() {
        return OPERATIONS;
    }

    /** What a call on a file of a layer does once the layer is open. */
    @FunctionalInterface
    private interface LayerCall {
        int apply(Where w, Opened layer);
    }

    /**
     * The answer of {@code call} on the layer a file path is in, opening the layer first if need be;
     * {@code ownDirectory} answers for the root, an image directory and a layer directory.
     */
    private int onFile(String path, LayerCall call, java.util.function.ToIntFunction<Where> ownDirectory) {
        Where w;
        try {
            w = paths.parse(path);
        } catch (BadName e) {
            return -errno.einval();
        }
        if (w.isOwnDirectory()) {
            return ownDirectory.applyAsInt(w);
        }
        if (!w.inDiff() && !w.file().equals(StorePath.INFO) && !w.file().equals(StorePath.BLOB)) {
            return -errno.enoent();
        }
        if (!w.inDiff() && !w.inner().equals("/")) {
            return -errno.enotdir();
        }
        try {
            return call.apply(w, held.open(w.layer()));
        } catch (HeldLayers.Unavailable e) {
            return answer(e);
        }
    }

    private int answer(HeldLayers.Unavailable e) {
        return switch (e.why) {
            case NOT_FOUND -> -errno.enoent();
            case INVALID -> -errno.einval();
            case FAILED -> -errno.eio();
        };
    }

    @Override
    int doGetattr(String path, Stat stat, FileInfo fi) {
        return onFile(path, (w, layer) -> switch (w.file()) {
            case StorePath.DIFF -> layer.fs().getattr(w.inner(), stat, fi);
            case StorePath.INFO -> fillFile(stat, layer, INFO_INO, layer.layer().info().length);
            default -> fillFile(stat, layer, BLOB_INO, layer.layer().blobSize());
        }, w -> ownDirectory(w, stat));
    }

    /** getattr of the root, an image directory or a layer directory. */
    private int ownDirectory(Where w, Stat stat) {
        long ino;
        if (w.isRoot()) {
            ino = ROOT_INO;
        } else if (w.isRefDir()) {
            ino = 2 + (w.ref().hashCode() & 0x7fff_ffffL);
        } else {
            Opened open = held.ifOpen(w.layer());
            ino = open != null ? open.slot() << 32 | KEY_DIR_INO : 2 + ((w.ref() + w.key()).hashCode() & 0x7fff_ffffL);
        }
        fillOwn(stat, Stat.S_IFDIR | 0500, 2, 0);
        NativeFields.set(stat, ino, 0, 0);
        return 0;
    }

    private int fillFile(Stat stat, Opened layer, long ino, long size) {
        fillOwn(stat, Stat.S_IFREG | 0400, 1, size);
        NativeFields.set(stat, layer.slot() << 32 | ino, 0, size);
        return 0;
    }

    private void fillOwn(Stat stat, int mode, int links, long size) {
        stat.setMode(mode);
        stat.setNLink((short) links);
        stat.setUid(0);
        stat.setGid(0);
        stat.setSize(size);
        stat.mTime().set(mountedAt);
        stat.cTime().set(mountedAt);
        stat.aTime().set(mountedAt);
    }

    @Override
    int doReadlink(String path, ByteBuffer buf, long len) {
        return onFile(path, (w, layer) -> w.inDiff() ? layer.fs().readlink(w.inner(), buf, len) : -errno.einval(),
                w -> -errno.einval());
    }

    @Override
    int doOpen(String path, FileInfo fi) {
        return onFile(path, (w, layer) -> {
            int result;
            if (w.inDiff()) {
                result = layer.fs().open(w.inner(), fi);
            } else if (fi.getOpenFlags().contains(StandardOpenOption.WRITE)) {
                result = -errno.erofs();
            } else {
                result = 0;
            }
            if (result == 0) {
                held.countOpen(w.layer(), 1);
            }
            return result;
        }, w -> -errno.eisdir());
    }

    @Override
    int doRead(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        return onFile(path, (w, layer) -> switch (w.file()) {
            case StorePath.DIFF -> layer.fs().read(w.inner(), buf, size, offset, fi);
            case StorePath.INFO -> {
                byte[] info = layer.layer().info();
                int n = (int) Math.max(0, Math.min(size, info.length - offset));
                buf.put(info, (int) Math.min(offset, info.length), n);
                yield n;
            }
            default -> readBlob(w, layer.layer(), buf, size, offset);
        }, w -> -errno.eisdir());
    }

    private int readBlob(Where w, ServedLayer layer, ByteBuffer buf, long size, long offset) {
        int n = (int) Math.max(0, Math.min(size, layer.blobSize() - offset));
        if (n == 0) {
            return 0;
        }
        try {
            buf.put(layer.blob().read(offset, n));
            return n;
        } catch (IOException e) {
            LOG.warning("read of the blob of layer " + w.key() + " at " + offset + " failed: " + e.getMessage());
            return -errno.eio();
        }
    }

    @Override
    int doRelease(String path, FileInfo fi) {
        Where w;
        try {
            w = paths.parse(path);
        } catch (BadName e) {
            return 0;
        }
        if (!w.isOwnDirectory()) {
            Opened open = held.ifOpen(w.layer());
            if (open != null && w.inDiff()) {
                open.fs().release(w.inner(), fi);
            }
            held.countOpen(w.layer(), -1);
        }
        return 0;
    }

    @Override
    int doOpendir(String path, FileInfo fi) {
        return onFile(path, (w, layer) -> {
            if (!w.inDiff()) {
                return -errno.enotdir();
            }
            int result = layer.fs().opendir(w.inner(), fi);
            if (result == 0) {
                held.countOpen(w.layer(), 1);
            }
            return result;
        }, w -> 0);
    }

    @Override
    int doReaddir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
        return onFile(path, (w, layer) -> w.inDiff() ? layer.fs().readdir(w.inner(), filler, offset, fi, flags) : -errno.enotdir(),
                w -> listOwn(path, w, filler));
    }

    /** What the store holds now under one of its own directories: nothing here is meant to be listed, but an operator may look. */
    private int listOwn(String path, Where w, DirFiller filler) {
        Set<String> names = new TreeSet<>();
        for (HeldLayers.Id id : held.ids()) {
            if (w.isRoot()) {
                names.add(StorePath.name(id.ref()));
            } else if (w.isRefDir() && id.ref().equals(w.ref())) {
                names.add(id.key());
            } else if (w.isKeyDir() && id.equals(w.layer())) {
                names.addAll(List.of(StorePath.DIFF, StorePath.INFO, StorePath.BLOB));
            }
        }
        // each with its stat: a listing entry without an inode number is skipped by readdir(3)
        String dir = path.endsWith("/") ? path : path + "/";
        filler.fill(".", st -> getattr(path, st, null), 0, 0);
        filler.fill("..", st -> getattr("/", st, null), 0, 0);
        for (String name : names) {
            if (filler.fill(name, st -> getattr(dir + name, st, null), 0, 0) != 0) {
                return -errno.enomem();
            }
        }
        return 0;
    }

    @Override
    int doReleasedir(String path, FileInfo fi) {
        try {
            Where w = paths.parse(path);
            if (w.inDiff()) {
                held.countOpen(w.layer(), -1);
            }
        } catch (BadName e) {
            // nothing was opened under it
        }
        return 0;
    }

    @Override
    int doStatfs(String path, Statvfs statvfs) {
        statvfs.setBsize(4096);
        statvfs.setFrsize(4096);
        statvfs.setBlocks(0);
        statvfs.setBfree(0);
        statvfs.setBavail(0);
        statvfs.setNameMax(255);
        return 0;
    }

    @Override
    int doGetxattr(String path, String name, ByteBuffer value) {
        return onFile(path, (w, layer) -> w.inDiff() ? layer.fs().getxattr(w.inner(), name, value) : -errno.enodata(),
                w -> -errno.enodata());
    }

    @Override
    int doListxattr(String path, ByteBuffer list) {
        return onFile(path, (w, layer) -> w.inDiff() ? layer.fs().listxattr(w.inner(), list) : 0, w -> 0);
    }

    /** Creating {@code <layer>/use} counts a user of the layer; it answers ENOENT, as containers/storage expects. */
    @Override
    public int create(String path, int mode, FileInfo fi) {
        return guarded("create", path, () -> {
            if (!path.endsWith("/" + StorePath.USE)) {
                return -errno.erofs();
            }
            Where w;
            try {
                w = paths.parse(path.substring(0, path.length() - StorePath.USE.length() - 1));
            } catch (BadName e) {
                return -errno.einval();
            }
            if (!w.isKeyDir()) {
                return -errno.erofs();
            }
            try {
                held.open(w.layer());
            } catch (HeldLayers.Unavailable e) {
                return answer(e);
            }
            held.addUser(w.layer());
            return -errno.enoent();
        });
    }

    /** {@code rmdir} of a layer directory lets one user go (ENOENT); EIO when the store does not hold it. */
    @Override
    public int rmdir(String path) {
        return guarded("rmdir", path, () -> {
            Where w;
            try {
                w = paths.parse(path);
            } catch (BadName e) {
                return -errno.einval();
            }
            if (!w.isKeyDir()) {
                return -errno.erofs();
            }
            return held.dropUser(w.layer()) ? -errno.enoent() : -errno.eio();
        });
    }

    /**
     * Releases the layers no one has used for the TTL: no users, no open files, last looked up
     * longer ago. Returns how many were released. The daemon calls this now and then.
     */
    public int sweep() {
        return held.sweep();
    }

    /** The layers held now. */
    public List<HeldLayer> held() {
        return held.held();
    }

    /** Releases every layer (the store is being unmounted). */
    public void releaseAll() {
        held.releaseAll();
    }
}
