package dev.starling.fuse;

import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;
import java.util.logging.Level;
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
 * An Additional Layer Store for containers/storage (CRI-O, Podman), the tree stargz-store serves
 * (compat doc section 2.3): {@code /<base64(image ref)>/<key>/{diff,info,blob,use}}, where the key
 * is a layer's TOC digest (containers/image 5.31 and later) or its compressed digest (before). A
 * lookup of {@code diff}, {@code info} or {@code blob} opens the layer through {@link Layers};
 * {@code diff} is then the layer's tree ({@link LayerFileSystem}, inode numbers of its own),
 * {@code blob} its compressed bytes. Creating {@code use} counts a user and {@code rmdir} of the
 * layer directory lets one go (both answer ENOENT, as containers/storage expects); a layer with
 * no users and no open files is released {@code ttl} after it was last used ({@link #sweep}).
 * A name that is not base64 or not a digest gets EINVAL; an unknown image or a layer that is not
 * eStargz ENOENT, so the runtime pulls it the ordinary way; any other failure EIO, logged.
 * Nothing here can be written.
 */
public final class StoreFileSystem implements FuseOperations {
    private static final Logger LOG = Logger.getLogger(StoreFileSystem.class.getName());
    static final String DIFF = "diff", INFO = "info", BLOB = "blob", USE = "use";
    private static final long ROOT_INO = 1;
    /** Inode numbers of a layer's own files (info, blob, its directory), above any TOC node's in its 2^32 block. */
    private static final long INFO_INO = 0xFFFF_FFF0L, BLOB_INO = 0xFFFF_FFF1L, KEY_DIR_INO = 0xFFFF_FFF2L;

    /** Where the store's layers come from: the node daemon resolves images and opens layers. */
    public interface Layers {
        /**
         * Checks that {@code imageRef} is an image reference.
         *
         * @throws IllegalArgumentException when it is not (the lookup gets EINVAL)
         */
        void checkReference(String imageRef);

        /**
         * Opens the layer {@code key} (a TOC digest or a compressed layer digest) of {@code imageRef}.
         *
         * @throws NoSuchFileException no such image or layer, or the layer is not eStargz (ENOENT)
         * @throws IOException         it could not be resolved now (EIO)
         */
        Layer open(String imageRef, String key) throws IOException;
    }

    /**
     * A layer as the store serves it.
     *
     * @param info    the {@code info} file: containers/storage's layer JSON, in the form the key implies
     * @param blob    the compressed blob, read by range
     * @param state   shown under {@code diff/.stargz-snapshotter}, or null
     * @param release lets go of the layer
     */
    public record Layer(TocIndex index, ChunkSource chunks, byte[] info, RangeReader blob, long blobSize,
                        StateFile state, Runnable release) {
    }

    /** A layer the store holds, by image and key, as {@code starling status} shows it. */
    public record Held(String imageRef, String key, int users, int openFiles) {
    }

    private record LayerId(String ref, String key) {
    }

    private record Opened(Layer layer, LayerFileSystem fs, long slot) {
    }

    /** One layer directory: opened once however many threads look it up at once. */
    private static final class Entry {
        final CompletableFuture<Opened> opened = new CompletableFuture<>();
        final long slot;
        int users;
        int openFiles;
        volatile long lastUsed;

        Entry(long slot, long now) {
            this.slot = slot;
            this.lastUsed = now;
        }
    }

    private final Layers layers;
    private final Errno errno;
    private final MountOptions options;
    private final long ttlNanos;
    private final LongSupplier nanoTime;
    private final Map<LayerId, Entry> entries = new ConcurrentHashMap<>();
    private final AtomicLong nextSlot = new AtomicLong(1);
    private final UnexpectedFailures unexpected;
    private final Instant mountedAt = Instant.now();

    /**
     * @param ttl      how long a layer stays open after its last user and last open file
     * @param nanoTime the clock {@link #sweep} reads ({@code System::nanoTime}; tests pass their own)
     */
    public StoreFileSystem(Layers layers, Errno errno, MountOptions options, Duration ttl, LongSupplier nanoTime) {
        this.layers = layers;
        this.errno = errno;
        this.unexpected = new UnexpectedFailures(LOG, errno);
        this.options = options;
        this.ttlNanos = ttl.toNanos();
        this.nanoTime = nanoTime;
    }

    /** A path in the store: the image, the layer, the file in the layer directory, and the path below {@code diff}. */
    private record Where(String ref, String key, String file, String inner) {
        boolean isRoot() {
            return ref == null;
        }

        boolean isRefDir() {
            return ref != null && key == null;
        }

        boolean isKeyDir() {
            return key != null && file == null;
        }

        boolean inDiff() {
            return DIFF.equals(file);
        }
    }

    /** A name that is not what the store serves at its place. */
    private static final class BadName extends Exception {
        BadName(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * The image reference a top-level name stands for, decoded and checked once: every request of a
     * walk through a layer names it again (libfuse hands over whole paths), and parsing a
     * reference is the dearest part of finding a layer. Bounded: cleared when it holds 1,024.
     */
    private final Map<String, String> references = new ConcurrentHashMap<>();

    private String reference(String name) throws BadName {
        String ref;
        try {
            ref = new String(Base64.getDecoder().decode(name), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new BadName("not base64");
        }
        try {
            layers.checkReference(ref);
        } catch (IllegalArgumentException e) {
            throw new BadName("not an image reference: " + e.getMessage());
        }
        if (references.size() >= 1024) {
            references.clear();
        }
        references.put(name, ref);
        return ref;
    }

    /** {@code sha256:} and 64 lowercase hex digits (a layer key), checked without a regex per request. */
    private static boolean isDigest(String s) {
        if (s.length() != 71 || !s.startsWith("sha256:")) {
            return false;
        }
        for (int i = 7; i < 71; i++) {
            char c = s.charAt(i);
            if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) {
                return false;
            }
        }
        return true;
    }

    private Where where(String path) throws BadName {
        if (path.equals("/") || path.isEmpty()) {
            return new Where(null, null, null, null);
        }
        String[] parts = path.substring(1).split("/", 4);
        String ref = references.get(parts[0]);
        if (ref == null) {
            ref = reference(parts[0]);
        }
        if (parts.length == 1) {
            return new Where(ref, null, null, null);
        }
        if (!isDigest(parts[1])) {
            throw new BadName("not a sha256 digest");
        }
        if (parts.length == 2) {
            return new Where(ref, parts[1], null, null);
        }
        return new Where(ref, parts[1], parts[2], parts.length == 4 ? "/" + parts[3] : "/");
    }

    @Override
    public Errno errno() {
        return errno;
    }

    @Override
    public Set<Operation> supportedOperations() {
        return EnumSet.of(Operation.INIT, Operation.GET_ATTR, Operation.READLINK, Operation.OPEN, Operation.READ,
                Operation.RELEASE, Operation.OPEN_DIR, Operation.READ_DIR, Operation.RELEASE_DIR, Operation.STATFS,
                Operation.GET_XATTR, Operation.LIST_XATTR, Operation.CREATE, Operation.RMDIR,
                // not a read-only mount (creating `use` must reach us), so every write is refused here
                Operation.MKDIR, Operation.UNLINK, Operation.SYMLINK, Operation.RENAME,
                Operation.CHMOD, Operation.CHOWN, Operation.TRUNCATE, Operation.WRITE, Operation.SET_XATTR,
                Operation.REMOVE_XATTR, Operation.UTIMENS);
    }

    @Override
    public void init(FuseConnInfo conn, FuseConfig config) {
        LayerFileSystem.init(conn, config, options);
    }

    /*
     * Every entry point answers: a failure no one foresaw fails that one call with EIO and is logged,
     * instead of escaping into libfuse, which would end the process and every layer it serves.
     */
    private int guarded(String operation, String path, IntSupplier call) {
        try {
            return call.getAsInt();
        } catch (Throwable t) {
            return unexpected.answer(operation, path, t);
        }
    }

    /** The layer a path is in, opened now by the first to look it up, or the errno that answers instead. */
    private Object opened(Where w) {
        LayerId id = new LayerId(w.ref(), w.key());
        long now = nanoTime.getAsLong();
        boolean[] opener = new boolean[1];
        Entry entry = entries.computeIfAbsent(id, k -> {
            opener[0] = true;
            return new Entry(nextSlot.getAndIncrement(), now);
        });
        entry.lastUsed = now;
        if (opener[0]) {
            try {
                Layer layer = layers.open(w.ref(), w.key());
                entry.opened.complete(new Opened(layer, new LayerFileSystem(layer.index(), layer.chunks(), errno,
                        layer.state(), options, entry.slot << 32), entry.slot));
                LOG.info("the store serves layer " + w.key() + " of " + w.ref());
            } catch (Throwable t) {
                entries.remove(id, entry); // the next lookup tries again
                entry.opened.completeExceptionally(t);
            }
        }
        try {
            return entry.opened.join();
        } catch (CompletionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof NoSuchFileException) {
                LOG.fine("no layer " + w.key() + " of " + w.ref() + " in the store: " + cause.getMessage());
                return -errno.enoent();
            }
            if (cause instanceof IllegalArgumentException) {
                LOG.info("layer " + w.key() + " of " + w.ref() + ": " + cause.getMessage());
                return -errno.einval();
            }
            if (opener[0]) {
                LOG.log(Level.WARNING, "cannot open layer " + w.key() + " of " + w.ref() + " (answering EIO): "
                        + cause, cause instanceof IOException ? null : cause);
            }
            return -errno.eio();
        }
    }

    /** The entry of an opened layer, or null when nothing opened it (or it was released). */
    private Entry existing(Where w) {
        Entry e = entries.get(new LayerId(w.ref(), w.key()));
        return e != null && e.opened.isDone() && !e.opened.isCompletedExceptionally() ? e : null;
    }

    @FunctionalInterface
    private interface LayerCall {
        int apply(Where w, Opened layer);
    }

    /** Runs {@code call} on the layer a path is in, opening it first if need be. */
    private int onLayer(String path, LayerCall call) {
        Where w;
        try {
            w = where(path);
        } catch (BadName e) {
            return -errno.einval();
        }
        if (w.isRoot() || w.isRefDir() || w.isKeyDir()) {
            return Integer.MIN_VALUE; // the caller's own directories
        }
        if (!w.inDiff() && !w.file().equals(INFO) && !w.file().equals(BLOB)) {
            return -errno.enoent();
        }
        if (!w.inDiff() && !w.inner().equals("/")) {
            return -errno.enotdir();
        }
        Object o = opened(w);
        return o instanceof Opened layer ? call.apply(w, layer) : (Integer) o;
    }

    @Override
    public int getattr(String path, Stat stat, FileInfo fi) {
        return guarded("getattr", path, () -> {
            int r = onLayer(path, (w, layer) -> switch (w.file()) {
                case DIFF -> layer.fs().getattr(w.inner(), stat, fi);
                case INFO -> fillFile(stat, layer, INFO_INO, layer.layer().info().length);
                default -> fillFile(stat, layer, BLOB_INO, layer.layer().blobSize());
            });
            if (r != Integer.MIN_VALUE) {
                return r;
            }
            return ownDirectory(path, stat);
        });
    }

    /** getattr of the root, an image directory or a layer directory. */
    private int ownDirectory(String path, Stat stat) {
        Where w;
        try {
            w = where(path);
        } catch (BadName e) {
            return -errno.einval();
        }
        long ino;
        if (w.isRoot()) {
            ino = ROOT_INO;
        } else if (w.isRefDir()) {
            ino = 2 + (w.ref().hashCode() & 0x7fff_ffffL);
        } else {
            Entry e = existing(w);
            ino = e != null ? e.slot << 32 | KEY_DIR_INO : 2 + ((w.ref() + w.key()).hashCode() & 0x7fff_ffffL);
        }
        stat.setMode(Stat.S_IFDIR | 0500);
        stat.setNLink((short) 2);
        stat.setUid(0);
        stat.setGid(0);
        stat.setSize(0);
        stat.mTime().set(mountedAt);
        stat.cTime().set(mountedAt);
        stat.aTime().set(mountedAt);
        NativeFields.set(stat, ino, 0, 0);
        return 0;
    }

    private int fillFile(Stat stat, Opened layer, long ino, long size) {
        stat.setMode(Stat.S_IFREG | 0400);
        stat.setNLink((short) 1);
        stat.setUid(0);
        stat.setGid(0);
        stat.setSize(size);
        stat.mTime().set(mountedAt);
        stat.cTime().set(mountedAt);
        stat.aTime().set(mountedAt);
        NativeFields.set(stat, layer.slot() << 32 | ino, 0, size);
        return 0;
    }

    @Override
    public int readlink(String path, ByteBuffer buf, long len) {
        return guarded("readlink", path, () -> {
            int r = onLayer(path, (w, layer) -> w.inDiff() ? layer.fs().readlink(w.inner(), buf, len) : -errno.einval());
            return r == Integer.MIN_VALUE ? -errno.einval() : r;
        });
    }

    @Override
    public int open(String path, FileInfo fi) {
        return guarded("open", path, () -> {
            int r = onLayer(path, (w, layer) -> {
                int result;
                if (w.inDiff()) {
                    result = layer.fs().open(w.inner(), fi);
                } else if (fi.getOpenFlags().contains(StandardOpenOption.WRITE)) {
                    result = -errno.erofs();
                } else {
                    result = 0;
                }
                if (result == 0) {
                    countOpen(w, 1);
                }
                return result;
            });
            return r == Integer.MIN_VALUE ? -errno.eisdir() : r;
        });
    }

    private void countOpen(Where w, int delta) {
        Entry e = entries.get(new LayerId(w.ref(), w.key()));
        if (e != null) {
            synchronized (e) {
                e.openFiles = Math.max(0, e.openFiles + delta);
            }
            e.lastUsed = nanoTime.getAsLong();
        }
    }

    @Override
    public int read(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        return guarded("read", path, () -> {
            int r = onLayer(path, (w, layer) -> switch (w.file()) {
                case DIFF -> layer.fs().read(w.inner(), buf, size, offset, fi);
                case INFO -> {
                    byte[] info = layer.layer().info();
                    int n = (int) Math.max(0, Math.min(size, info.length - offset));
                    buf.put(info, (int) Math.min(offset, info.length), n);
                    yield n;
                }
                default -> readBlob(w, layer.layer(), buf, size, offset);
            });
            return r == Integer.MIN_VALUE ? -errno.eisdir() : r;
        });
    }

    private int readBlob(Where w, Layer layer, ByteBuffer buf, long size, long offset) {
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
    public int release(String path, FileInfo fi) {
        return guarded("release", path, () -> {
            Where w;
            try {
                w = where(path);
            } catch (BadName e) {
                return 0;
            }
            if (w.file() != null) {
                Entry e = existing(w);
                if (e != null && w.inDiff()) {
                    e.opened.join().fs().release(w.inner(), fi);
                }
                countOpen(w, -1);
            }
            return 0;
        });
    }

    @Override
    public int opendir(String path, FileInfo fi) {
        return guarded("opendir", path, () -> {
            int r = onLayer(path, (w, layer) -> {
                if (!w.inDiff()) {
                    return -errno.enotdir();
                }
                int result = layer.fs().opendir(w.inner(), fi);
                if (result == 0) {
                    countOpen(w, 1);
                }
                return result;
            });
            return r == Integer.MIN_VALUE ? 0 : r;
        });
    }

    @Override
    public int readdir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
        return guarded("readdir", path, () -> {
            int r = onLayer(path, (w, layer) -> w.inDiff() ? layer.fs().readdir(w.inner(), filler, offset, fi, flags)
                    : -errno.enotdir());
            if (r != Integer.MIN_VALUE) {
                return r;
            }
            // what the store holds now: nothing here is meant to be listed, but an operator may look
            Where w;
            try {
                w = where(path);
            } catch (BadName e) {
                return -errno.einval();
            }
            Set<String> names = new TreeSet<>();
            for (Map.Entry<LayerId, Entry> e : entries.entrySet()) {
                if (!e.getValue().opened.isDone() || e.getValue().opened.isCompletedExceptionally()) {
                    continue;
                }
                LayerId id = e.getKey();
                if (w.isRoot()) {
                    names.add(Base64.getEncoder().encodeToString(id.ref().getBytes(StandardCharsets.UTF_8)));
                } else if (w.isRefDir() && id.ref().equals(w.ref())) {
                    names.add(id.key());
                } else if (w.isKeyDir() && id.equals(new LayerId(w.ref(), w.key()))) {
                    names.addAll(List.of(DIFF, INFO, BLOB));
                }
            }
            // each with its stat: a listing entry without an inode number is skipped by readdir(3)
            String dir = path.endsWith("/") ? path : path + "/";
            filler.fill(".", st -> getattr(path, st, null), 0, 0);
            filler.fill("..", st -> ownDirectory("/", st), 0, 0);
            for (String name : names) {
                if (filler.fill(name, st -> getattr(dir + name, st, null), 0, 0) != 0) {
                    return -errno.enomem();
                }
            }
            return 0;
        });
    }

    @Override
    public int releasedir(String path, FileInfo fi) {
        return guarded("releasedir", path, () -> {
            Where w;
            try {
                w = where(path);
            } catch (BadName e) {
                return 0;
            }
            if (w.inDiff()) {
                countOpen(w, -1);
            }
            return 0;
        });
    }

    @Override
    public int statfs(String path, Statvfs statvfs) {
        statvfs.setBsize(4096);
        statvfs.setFrsize(4096);
        statvfs.setBlocks(0);
        statvfs.setBfree(0);
        statvfs.setBavail(0);
        statvfs.setNameMax(255);
        return 0;
    }

    @Override
    public int getxattr(String path, String name, ByteBuffer value) {
        return guarded("getxattr", path, () -> {
            int r = onLayer(path, (w, layer) -> w.inDiff() ? layer.fs().getxattr(w.inner(), name, value) : -errno.enodata());
            return r == Integer.MIN_VALUE ? -errno.enodata() : r;
        });
    }

    @Override
    public int listxattr(String path, ByteBuffer list) {
        return guarded("listxattr", path, () -> {
            int r = onLayer(path, (w, layer) -> w.inDiff() ? layer.fs().listxattr(w.inner(), list) : 0);
            return r == Integer.MIN_VALUE ? 0 : r;
        });
    }

    /** Creating {@code <layer>/use} counts a user of the layer; it answers ENOENT, as containers/storage expects. */
    @Override
    public int create(String path, int mode, FileInfo fi) {
        return guarded("create", path, () -> {
            if (!path.endsWith("/" + USE)) {
                return -errno.erofs();
            }
            Where w;
            try {
                w = where(path.substring(0, path.length() - USE.length() - 1));
            } catch (BadName e) {
                return -errno.einval();
            }
            if (!w.isKeyDir()) {
                return -errno.erofs();
            }
            Object o = opened(w);
            if (!(o instanceof Opened)) {
                return (Integer) o;
            }
            Entry e = entries.get(new LayerId(w.ref(), w.key()));
            if (e != null) {
                synchronized (e) {
                    e.users++;
                }
            }
            return -errno.enoent();
        });
    }

    /** {@code rmdir} of a layer directory lets one user go (ENOENT); EIO when the store does not hold it. */
    @Override
    public int rmdir(String path) {
        return guarded("rmdir", path, () -> {
            Where w;
            try {
                w = where(path);
            } catch (BadName e) {
                return -errno.einval();
            }
            if (!w.isKeyDir()) {
                return -errno.erofs();
            }
            Entry e = existing(w);
            if (e == null) {
                return -errno.eio();
            }
            synchronized (e) {
                e.users = Math.max(0, e.users - 1);
            }
            e.lastUsed = nanoTime.getAsLong();
            return -errno.enoent();
        });
    }

    /**
     * Releases the layers no one has used for the TTL: no users, no open files, last looked up
     * longer ago. Returns how many were released. The daemon calls this now and then.
     */
    public int sweep() {
        long now = nanoTime.getAsLong();
        int released = 0;
        for (Map.Entry<LayerId, Entry> item : entries.entrySet()) {
            Entry e = item.getValue();
            if (!e.opened.isDone()) {
                continue;
            }
            boolean idle;
            synchronized (e) {
                idle = e.users == 0 && e.openFiles == 0 && now - e.lastUsed >= ttlNanos;
            }
            if (idle && entries.remove(item.getKey(), e)) {
                releaseQuietly(item.getKey(), e);
                released++;
            }
        }
        return released;
    }

    private static void releaseQuietly(LayerId id, Entry e) {
        Opened o = e.opened.getNow(null);
        if (o == null) {
            return;
        }
        try {
            o.layer().release().run();
            LOG.info("the store released layer " + id.key() + " of " + id.ref());
        } catch (RuntimeException ex) {
            LOG.warning("releasing layer " + id.key() + " of " + id.ref() + ": " + ex);
        }
    }

    /** The layers held now. */
    public List<Held> held() {
        List<Held> out = new ArrayList<>();
        entries.forEach((id, e) -> {
            if (e.opened.isDone() && !e.opened.isCompletedExceptionally()) {
                synchronized (e) {
                    out.add(new Held(id.ref(), id.key(), e.users, e.openFiles));
                }
            }
        });
        return out;
    }

    /** Releases every layer (the store is being unmounted). */
    public void releaseAll() {
        for (Map.Entry<LayerId, Entry> item : entries.entrySet()) {
            if (entries.remove(item.getKey(), item.getValue())) {
                releaseQuietly(item.getKey(), item.getValue());
            }
        }
    }

    // Nothing in the store can be written. The mount is not read-only (creating `use` must reach
    // the store), so each write is refused here instead of by the kernel.

    @Override
    public int write(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public int mkdir(String path, int mode) {
        return -errno.erofs();
    }

    @Override
    public int unlink(String path) {
        return -errno.erofs();
    }

    @Override
    public int symlink(String linkname, String target) {
        return -errno.erofs();
    }

    @Override
    public int rename(String oldpath, String newpath, int flags) {
        return -errno.erofs();
    }

    @Override
    public int chmod(String path, int mode, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public int chown(String path, int uid, int gid, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public int truncate(String path, long size, FileInfo fi) {
        return -errno.erofs();
    }

    @Override
    public int setxattr(String path, String name, ByteBuffer value, int flags) {
        return -errno.erofs();
    }

    @Override
    public int removexattr(String path, String name) {
        return -errno.erofs();
    }

    @Override
    public int utimens(String path, TimeSpec atime, TimeSpec mtime, FileInfo fi) {
        return -errno.erofs();
    }
}
