package dev.starling.fuse;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.EntryType;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.TocNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
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

/**
 * One read-only eStargz layer as a file system, exactly as compat doc section 1.13 says:
 * modes with setuid/setgid/sticky, owners, times, symlinks, hardlinks as one inode, devices, fifos,
 * xattrs, whiteouts as 0:0 character devices, opaque directories as {@code trusted.overlay.opaque}
 * and {@code user.overlay.opaque}, landmarks hidden at the root, names sorted. File bytes come
 * chunk by chunk from a {@link ChunkSource}; a chunk that cannot be had fails that read with EIO.
 */
public final class LayerFileSystem implements FuseOperations {
    private static final Logger LOG = Logger.getLogger(LayerFileSystem.class.getName());
    static final String WHITEOUT_PREFIX = ".wh.";
    static final String OPAQUE_MARKER = ".wh..wh..opq";
    /**
     * The first read-ahead of a sequential reader: a reader that stops after a few MiB (a header, a
     * config) must not cost the registry 32 MiB; the window doubles while the reader stays
     * sequential, up to {@link MountOptions#readAheadBytes}.
     */
    static final long INITIAL_READ_AHEAD = 1L << 20;
    /** How far from the previous read's end a read may start and still count as sequential. */
    private static final long SEQUENTIAL_SLACK = 4L << 20;
    private static final byte[] OPAQUE_VALUE = "y".getBytes(StandardCharsets.US_ASCII);
    private static final Set<String> OPAQUE_XATTRS = Set.of("trusted.overlay.opaque", "user.overlay.opaque");

    private final TocIndex index;
    private final ChunkSource chunks;
    private final Errno errno;
    private final StateFile state;
    private final MountOptions options;
    /** The listings {@link #listing} keeps: a few walkers' current directories. */
    private final Map<TocNode, List<Map.Entry<String, Entry>>> listings = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<TocNode, List<Map.Entry<String, LayerFileSystem.Entry>>> eldest) {
            return size() > 16;
        }
    };
    /** {@code FUSE_READDIR_PLUS} of libfuse's {@code enum fuse_readdir_flags}: the kernel wants attributes too. */
    private static final int READDIR_PLUS = 1;
    private final long stateDirIno;
    /** Open files by handle: the node, and where a sequential reader is. */
    private final Map<Long, OpenFile> open = new ConcurrentHashMap<>();
    private final AtomicLong nextHandle = new AtomicLong(1);
    private final UnexpectedFailures unexpected;
    /** FUSE threads that reads waiting on the network may take; the rest stay free for metadata and local reads. */
    private final Semaphore remoteReads;
    /** Per directory, the whiteouts it shows as character devices, with their inode numbers. */
    private final Map<TocNode, Map<String, Long>> whiteouts = new IdentityHashMap<>();
    /** Sum of regular file sizes, for statfs. */
    private final long totalBytes;
    /** Added to every inode number: layers served by one mount (the store) must not share inode numbers. */
    private final long inodeBase;

    public LayerFileSystem(TocIndex index, ChunkSource chunks, Errno errno, StateFile state, MountOptions options) {
        this(index, chunks, errno, state, options, 0);
    }

    LayerFileSystem(TocIndex index, ChunkSource chunks, Errno errno, StateFile state, MountOptions options, long inodeBase) {
        this.inodeBase = inodeBase;
        this.unexpected = new UnexpectedFailures(LOG, errno);
        this.index = index;
        this.chunks = chunks;
        this.errno = errno;
        this.state = state;
        this.options = options;
        this.remoteReads = new Semaphore(options.remoteReadThreads());
        long nextIno = index.nodeCount() + 1L;
        long bytes = 0;
        for (int id = 0; id < index.nodeCount(); id++) {
            TocNode dir = index.node(id);
            bytes += dir.type() == EntryType.REG ? dir.size() : 0;
            for (int i = 0; i < dir.childCount(); i++) {
                String name = dir.childName(i);
                if (name.startsWith(WHITEOUT_PREFIX) && !name.equals(OPAQUE_MARKER)) {
                    String hidden = name.substring(WHITEOUT_PREFIX.length());
                    if (!hidden.isEmpty() && dir.child(hidden) == null) {
                        whiteouts.computeIfAbsent(dir, d -> new HashMap<>()).put(hidden, nextIno++);
                    }
                }
            }
        }
        this.totalBytes = bytes;
        this.stateDirIno = nextIno;
    }

    /**
     * An open regular file, or the state file (node null). {@code readEnd} is where the last read
     * ended, {@code aheadUntil} how far chunks have been asked for ahead of the reader, {@code window}
     * how far ahead the next read-ahead reaches (0: not sequential yet).
     */
    private static final class OpenFile {
        final TocNode node;
        volatile long readEnd;
        volatile long aheadUntil;
        volatile long window;

        OpenFile(TocNode node) {
            this.node = node;
        }
    }

    @Override
    public Errno errno() {
        return errno;
    }

    @Override
    public Set<Operation> supportedOperations() {
        return EnumSet.of(Operation.INIT, Operation.GET_ATTR, Operation.READLINK, Operation.OPEN, Operation.READ,
                Operation.RELEASE, Operation.OPEN_DIR, Operation.READ_DIR, Operation.RELEASE_DIR, Operation.STATFS,
                Operation.GET_XATTR, Operation.LIST_XATTR);
    }

    @Override
    public void init(FuseConnInfo conn, FuseConfig config) {
        init(conn, config, options);
    }

    /** What every Starling mount sets at init: our inode numbers, and how many requests the kernel keeps in flight. */
    static void init(FuseConnInfo conn, FuseConfig config, MountOptions options) {
        NativeFields.useIno(config);
        conn.setMaxBackground(options.maxBackground());
        conn.setCongestionThreshold(Math.max(1, options.maxBackground() * 3 / 4));
    }

    /*
     * Every entry point answers: a failure no one foresaw (a bug, a hostile TOC deeper than a stack,
     * memory running out) fails that one call with EIO and is logged, instead of escaping into
     * libfuse, which would end the process and every mount it serves.
     */
    @Override
    public int getattr(String path, Stat stat, FileInfo fi) {
        try {
            return doGetattr(path, stat, fi);
        } catch (Throwable t) {
            return unexpected("getattr", path, t);
        }
    }

    @Override
    public int readlink(String path, ByteBuffer buf, long len) {
        try {
            return doReadlink(path, buf, len);
        } catch (Throwable t) {
            return unexpected("readlink", path, t);
        }
    }

    @Override
    public int open(String path, FileInfo fi) {
        try {
            return doOpen(path, fi);
        } catch (Throwable t) {
            return unexpected("open", path, t);
        }
    }

    @Override
    public int read(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        try {
            return doRead(path, buf, size, offset, fi);
        } catch (Throwable t) {
            return unexpected("read", path, t);
        }
    }

    @Override
    public int opendir(String path, FileInfo fi) {
        try {
            return doOpendir(path, fi);
        } catch (Throwable t) {
            return unexpected("opendir", path, t);
        }
    }

    @Override
    public int readdir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
        try {
            return doReaddir(path, filler, offset, fi, flags);
        } catch (Throwable t) {
            return unexpected("readdir", path, t);
        }
    }

    @Override
    public int statfs(String path, Statvfs statvfs) {
        try {
            return doStatfs(path, statvfs);
        } catch (Throwable t) {
            return unexpected("statfs", path, t);
        }
    }

    @Override
    public int getxattr(String path, String name, ByteBuffer value) {
        try {
            return doGetxattr(path, name, value);
        } catch (Throwable t) {
            return unexpected("getxattr", path, t);
        }
    }

    @Override
    public int listxattr(String path, ByteBuffer list) {
        try {
            return doListxattr(path, list);
        } catch (Throwable t) {
            return unexpected("listxattr", path, t);
        }
    }

    private int unexpected(String operation, String path, Throwable t) {
        return unexpected.answer(operation, path, t);
    }

    /** What a path names: a node, a whiteout shown as a device, or the state directory or file. */
    private enum Kind { NODE, WHITEOUT, STATE_DIR, STATE_FILE }

    private record Entry(Kind kind, TocNode node, long ino) {
        static Entry of(TocNode node) {
            return new Entry(Kind.NODE, node, node.id() + 1L);
        }

        boolean whiteout() {
            return kind == Kind.WHITEOUT;
        }

        boolean isNode() {
            return kind == Kind.NODE;
        }

        boolean isDirectory() {
            return kind == Kind.STATE_DIR || kind == Kind.NODE && node.isDirectory();
        }
    }

    private Entry resolve(String path) {
        TocNode node = index.root();
        if (path.equals("/") || path.isEmpty()) {
            return Entry.of(node);
        }
        String[] parts = path.substring(1).split("/");
        if (state != null && parts[0].equals(StateFile.DIRECTORY)) {
            if (parts.length == 1) {
                return new Entry(Kind.STATE_DIR, null, stateDirIno);
            }
            return parts.length == 2 && parts[1].equals(state.name()) ? new Entry(Kind.STATE_FILE, null, stateDirIno + 1) : null;
        }
        for (int i = 0; i < parts.length; i++) {
            String name = parts[i];
            if (!node.isDirectory() || hidden(node, name)) {
                return null;
            }
            TocNode child = node.child(name);
            if (child == null) {
                Long ino = whiteouts.getOrDefault(node, Map.of()).get(name);
                return ino != null && i == parts.length - 1 ? new Entry(Kind.WHITEOUT, null, ino) : null;
            }
            node = child;
        }
        return Entry.of(node);
    }

    private boolean hidden(TocNode dir, String name) {
        return name.startsWith(WHITEOUT_PREFIX)
                || dir.parent() == null && (name.equals(TocIndex.PREFETCH_LANDMARK) || name.equals(TocIndex.NO_PREFETCH_LANDMARK)
                || state != null && name.equals(StateFile.DIRECTORY));
    }

    private int doGetattr(String path, Stat stat, FileInfo fi) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        fill(stat, e);
        return 0;
    }

    private void fill(Stat stat, Entry e) {
        if (e.kind() == Kind.STATE_DIR || e.kind() == Kind.STATE_FILE) {
            boolean dir = e.kind() == Kind.STATE_DIR;
            long size = dir ? 0 : state.contents().get().length;
            stat.setMode(dir ? Stat.S_IFDIR | 0500 : Stat.S_IFREG | 0400);
            stat.setNLink((short) (dir ? 2 : 1));
            stat.setUid(0);
            stat.setGid(0);
            stat.setSize(size);
            Instant now = Instant.now();
            stat.mTime().set(now);
            stat.cTime().set(now);
            stat.aTime().set(now);
            NativeFields.set(stat, inodeBase + e.ino(), 0, size);
            return;
        }
        if (e.whiteout()) {
            stat.setMode(Stat.S_IFCHR);
            stat.setNLink((short) 1);
            stat.setUid(0);
            stat.setGid(0);
            stat.setSize(0);
            NativeFields.set(stat, inodeBase + e.ino(), 0, 0);
            return;
        }
        TocNode n = e.node();
        stat.setMode(typeBits(n.type()) | n.mode());
        stat.setNLink((short) Math.min(n.linkCount(), Short.MAX_VALUE));
        stat.setUid(n.uid());
        stat.setGid(n.gid());
        stat.setSize(n.size());
        Instant mtime = Instant.ofEpochSecond(n.modTime());
        stat.mTime().set(mtime);
        stat.cTime().set(mtime);
        stat.aTime().set(mtime);
        long rdev = n.type() == EntryType.CHAR || n.type() == EntryType.BLOCK
                ? NativeFields.makedev(n.devMajor(), n.devMinor()) : 0;
        NativeFields.set(stat, inodeBase + e.ino(), rdev, n.type() == EntryType.REG ? n.size() : 0);
    }

    private static int typeBits(EntryType type) {
        return switch (type) {
            case DIR -> Stat.S_IFDIR;
            case SYMLINK -> Stat.S_IFLNK;
            case CHAR -> Stat.S_IFCHR;
            case BLOCK -> Stat.S_IFBLK;
            case FIFO -> Stat.S_IFIFO;
            default -> Stat.S_IFREG;
        };
    }

    private int doReadlink(String path, ByteBuffer buf, long len) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        if (!e.isNode() || e.node().type() != EntryType.SYMLINK) {
            return -errno.einval();
        }
        byte[] target = e.node().linkTarget().getBytes(StandardCharsets.UTF_8); // readlink counts bytes, as st_size does
        int n = (int) Math.min(target.length, len - 1);
        buf.put(target, 0, n).put((byte) 0);
        return 0;
    }

    private int doOpen(String path, FileInfo fi) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        if (e.isDirectory()) {
            return -errno.eisdir();
        }
        if (e.whiteout()) {
            return -errno.eacces();
        }
        if (fi.getOpenFlags().contains(java.nio.file.StandardOpenOption.WRITE)) {
            return -errno.erofs();
        }
        if (e.kind() == Kind.STATE_FILE) {
            NativeFields.directIo(fi);
        }
        long handle = nextHandle.getAndIncrement();
        open.put(handle, new OpenFile(e.node())); // reads find the node by handle, not by walking the path again
        fi.setFh(handle);
        return 0;
    }

    private int doRead(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        OpenFile of = open.get(fi.getFh());
        if (of == null) {
            return -errno.ebadf();
        }
        if (of.node == null) {
            byte[] json = state.contents().get();
            int n = (int) Math.max(0, Math.min(size, json.length - offset));
            buf.put(json, (int) Math.min(offset, json.length), n);
            return n;
        }
        TocNode file = of.node;
        long end = Math.min(file.size(), offset + size);
        long pos = offset;
        try {
            readAheadIfSequential(of, offset, end);
            while (pos < end) {
                Chunk chunk = index.chunk(file, index.chunkIndexAt(file, pos));
                int from = (int) (pos - chunk.fileOffset());
                int n = (int) Math.min(chunk.size() - from, end - pos);
                if (!chunks.copyIfLocal(chunk, from, n, buf)) {
                    buf.put(readRemote(chunk, n), from, n);
                }
                pos += n;
            }
        } catch (IOException | RuntimeException ex) {
            LOG.log(Level.WARNING, "read of " + UnexpectedFailures.abbreviated(file.path()) + " at " + pos + " failed: " + ex.getMessage());
            return pos > offset ? (int) (pos - offset) : -errno.eio();
        }
        return (int) (pos - offset);
    }

    /** A chunk that must come over the network, if a thread may wait for it; else EIO at once. */
    private byte[] readRemote(Chunk chunk, int bytesUsed) throws IOException {
        if (!remoteReads.tryAcquire()) {
            throw new IOException(options.remoteReadThreads() + " reads are already waiting on the network "
                    + "(is the registry wedged?); failing this one so metadata and cached reads stay answered");
        }
        try {
            return chunks.read(chunk, bytesUsed);
        } finally {
            remoteReads.release();
        }
    }

    /**
     * A read that starts where the previous one ended, or a little past it (the kernel's readahead
     * sends several requests at once, out of order), marks a sequential reader: the chunks of the
     * next window are asked for now, in parallel, instead of one at a time as the reader reaches
     * them. The window starts at {@link #INITIAL_READ_AHEAD}; each time the reader gets into the
     * second half of what was asked for, the next window, twice as long (up to
     * {@link MountOptions#readAheadBytes}), is asked for: as the kernel's own readahead grows. So a
     * reader that stops early costs little, and one that goes on soon has 32 MiB on its way. A
     * random reader never triggers it.
     */
    private void readAheadIfSequential(OpenFile of, long offset, long end) {
        long previousEnd = of.readEnd;
        of.readEnd = Math.max(previousEnd, end);
        boolean sequential = offset > 0 && offset >= previousEnd - SEQUENTIAL_SLACK && offset <= previousEnd + SEQUENTIAL_SLACK;
        if (options.readAheadBytes() == 0 || !sequential) {
            return;
        }
        TocNode file = of.node;
        long window;
        if (of.window == 0) {
            window = Math.min(INITIAL_READ_AHEAD, options.readAheadBytes());
        } else if (end >= of.aheadUntil - of.window / 2) {
            // the reader is into the second half of what was asked for: ask for the next, twice as far
            window = Math.min(options.readAheadBytes(), of.window * 2);
        } else {
            return; // enough is on its way
        }
        long from = Math.max(end, of.aheadUntil);
        long until = Math.min(file.size(), end + window);
        if (from >= until) {
            return;
        }
        List<Chunk> upcoming = new ArrayList<>();
        for (int i = index.chunkIndexAt(file, from); i >= 0 && i < file.chunkCount(); i++) {
            Chunk c = index.chunk(file, i);
            if (c.fileOffset() >= until) {
                break;
            }
            if (c.fileOffset() >= of.aheadUntil) { // a chunk that starts before was asked for already
                upcoming.add(c);
            }
        }
        if (!upcoming.isEmpty()) {
            Chunk last = upcoming.getLast();
            of.aheadUntil = last.fileOffset() + last.size();
            of.window = window;
            chunks.readAhead(upcoming);
        }
    }

    @Override
    public int release(String path, FileInfo fi) {
        open.remove(fi.getFh());
        return 0;
    }

    private int doOpendir(String path, FileInfo fi) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        return e.isDirectory() ? 0 : -errno.enotdir();
    }

    /**
     * A directory's entries in name order, the same for every call of one listing: the kernel reads
     * a directory in several calls (its buffer holds a few dozen entries with their attributes), so
     * the last few listings are kept rather than sorted again for each call.
     */
    private List<Map.Entry<String, Entry>> listing(Entry e) {
        TocNode dir = e.node();
        synchronized (listings) {
            List<Map.Entry<String, Entry>> kept = listings.get(dir);
            if (kept != null) {
                return kept;
            }
        }
        TreeMap<String, Entry> children = new TreeMap<>();
        for (int i = 0; i < dir.childCount(); i++) {
            String name = dir.childName(i);
            if (!hidden(dir, name)) {
                children.put(name, Entry.of(dir.child(i)));
            }
        }
        whiteouts.getOrDefault(dir, Map.of()).forEach((name, ino) -> children.put(name, new Entry(Kind.WHITEOUT, null, ino)));
        List<Map.Entry<String, Entry>> listing = new ArrayList<>(children.size() + 2);
        listing.add(Map.entry(".", e));
        listing.add(Map.entry("..", Entry.of(dir.parent() == null ? dir : dir.parent())));
        listing.addAll(children.entrySet());
        synchronized (listings) {
            listings.put(dir, listing);
        }
        return listing;
    }

    private int doReaddir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
        Entry e = resolve(path);
        if (e == null || !e.isDirectory()) {
            return -errno.enoent();
        }
        List<Map.Entry<String, Entry>> listing = e.kind() == Kind.STATE_DIR
                ? List.of(Map.entry(".", e), Map.entry("..", Entry.of(index.root())),
                        Map.entry(state.name(), new Entry(Kind.STATE_FILE, null, stateDirIno + 1)))
                : listing(e);
        // Asked for READDIRPLUS, the attributes go with the names, and a walk (find, du, overlayfs'
        // checks) needs no LOOKUP per entry. libfuse passes them on only for entries filled with an
        // offset (its other mode keeps names and modes alone), so each entry carries its position
        // and the kernel asks again from where its buffer filled up.
        int plus = (flags & READDIR_PLUS) != 0 ? DirFiller.FUSE_FILL_DIR_PLUS : 0;
        for (int i = (int) Math.max(0, offset); i < listing.size(); i++) {
            Map.Entry<String, Entry> child = listing.get(i);
            if (filler.fill(child.getKey(), st -> fill(st, child.getValue()), i + 1, i < 2 ? 0 : plus) != 0) {
                return 0; // the kernel's buffer is full: it comes back with offset i
            }
        }
        return 0;
    }

    @Override
    public int releasedir(String path, FileInfo fi) {
        return 0;
    }

    private int doStatfs(String path, Statvfs statvfs) {
        statvfs.setBsize(4096);
        statvfs.setFrsize(4096);
        statvfs.setBlocks((totalBytes + 4095) / 4096);
        statvfs.setBfree(0);
        statvfs.setBavail(0);
        statvfs.setNameMax(255);
        return 0;
    }

    private Map<String, byte[]> xattrs(Entry e) {
        if (!e.isNode()) {
            return Map.of();
        }
        TocNode n = e.node();
        if (n.isDirectory() && n.child(OPAQUE_MARKER) != null) {
            Map<String, byte[]> all = new TreeMap<>(n.xattrs());
            OPAQUE_XATTRS.forEach(k -> all.put(k, OPAQUE_VALUE));
            return all;
        }
        return n.xattrs();
    }

    private int doGetxattr(String path, String name, ByteBuffer value) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        byte[] v = xattrs(e).get(name);
        if (v == null) {
            return -errno.enodata();
        }
        if (value.capacity() == 0) {
            return v.length;
        }
        if (value.remaining() < v.length) {
            return -errno.erange();
        }
        value.put(v);
        return v.length;
    }

    private int doListxattr(String path, ByteBuffer list) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        java.io.ByteArrayOutputStream names = new java.io.ByteArrayOutputStream();
        for (String name : new TreeMap<>(xattrs(e)).keySet()) {
            names.writeBytes(name.getBytes(StandardCharsets.UTF_8));
            names.write(0);
        }
        if (list.capacity() == 0) {
            return names.size();
        }
        if (list.remaining() < names.size()) {
            return -errno.erange();
        }
        list.put(names.toByteArray());
        return names.size();
    }
}
