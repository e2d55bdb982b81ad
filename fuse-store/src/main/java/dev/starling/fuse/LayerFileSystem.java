package dev.starling.fuse;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.EntryType;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.TocNode;
import dev.starling.fuse.LayerTree.Entry;
import dev.starling.fuse.LayerTree.Kind;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.cryptomator.jfuse.api.DirFiller;
import org.cryptomator.jfuse.api.Errno;
import org.cryptomator.jfuse.api.FileInfo;
import org.cryptomator.jfuse.api.Stat;
import org.cryptomator.jfuse.api.Statvfs;

/**
 * One read-only eStargz layer as a file system: its {@link LayerTree} answered through FUSE, with
 * modes with setuid/setgid/sticky, owners, times, symlinks, hardlinks as one inode, devices and
 * fifos as the TOC says. File bytes come chunk by chunk from a {@link ChunkSource}, with the chunks
 * ahead of a sequential reader asked for early ({@link ReadAheadWindow}); a chunk that cannot be had
 * fails that read with EIO.
 */
public final class LayerFileSystem extends ReadOnlyOperations {
    private static final Logger LOG = Logger.getLogger(LayerFileSystem.class.getName());
    /** {@code FUSE_READDIR_PLUS} of libfuse's {@code enum fuse_readdir_flags}: the kernel wants attributes too. */
    private static final int READDIR_PLUS = 1;

    private final LayerTree tree;
    private final TocIndex index;
    private final ChunkSource chunks;
    /** Open files by handle: the node (null: the state file), and where a sequential reader is. */
    private final Map<Long, OpenFile> open = new ConcurrentHashMap<>();
    private final AtomicLong nextHandle = new AtomicLong(1);
    /** FUSE threads that reads waiting on the network may take; the rest stay free for metadata and local reads. */
    private final Semaphore networkSlots;
    /** Added to every inode number: layers served by one mount (the store) must not share inode numbers. */
    private final long inodeBase;

    private record OpenFile(TocNode node, ReadAheadWindow ahead) {
    }

    public LayerFileSystem(TocIndex index, ChunkSource chunks, Errno errno, StateFile state, MountOptions options) {
        this(index, chunks, errno, state, options, 0);
    }

    LayerFileSystem(TocIndex index, ChunkSource chunks, Errno errno, StateFile state, MountOptions options, long inodeBase) {
        super(errno, options, LOG);
        this.tree = new LayerTree(index, state);
        this.index = index;
        this.chunks = chunks;
        this.inodeBase = inodeBase;
        this.networkSlots = new Semaphore(options.remoteReadThreads());
    }

    @Override
    int doGetattr(String path, Stat stat, FileInfo fi) {
        Entry e = tree.resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        fill(stat, e);
        return 0;
    }

    private void fill(Stat stat, Entry e) {
        switch (e.kind()) {
            case STATE_DIR, STATE_FILE -> {
                boolean dir = e.kind() == Kind.STATE_DIR;
                long size = dir ? 0 : tree.state().contents().get().length;
                Instant now = Instant.now();
                set(stat, dir ? Stat.S_IFDIR | 0500 : Stat.S_IFREG | 0400, dir ? 2 : 1, 0, 0, size, now);
                NativeFields.set(stat, inodeBase + e.ino(), 0, size);
            }
            case WHITEOUT -> {
                set(stat, Stat.S_IFCHR, 1, 0, 0, 0, null);
                NativeFields.set(stat, inodeBase + e.ino(), 0, 0);
            }
            case NODE -> {
                TocNode n = e.node();
                set(stat, typeBits(n.type()) | n.mode(), Math.min(n.linkCount(), Short.MAX_VALUE), n.uid(), n.gid(), n.size(),
                        Instant.ofEpochSecond(n.modTime()));
                long rdev = n.type() == EntryType.CHAR || n.type() == EntryType.BLOCK
                        ? NativeFields.makedev(n.devMajor(), n.devMinor()) : 0;
                NativeFields.set(stat, inodeBase + e.ino(), rdev, n.type() == EntryType.REG ? n.size() : 0);
            }
        }
    }

    private static void set(Stat stat, int mode, int links, int uid, int gid, long size, Instant time) {
        stat.setMode(mode);
        stat.setNLink((short) links);
        stat.setUid(uid);
        stat.setGid(gid);
        stat.setSize(size);
        if (time != null) {
            stat.mTime().set(time);
            stat.cTime().set(time);
            stat.aTime().set(time);
        }
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

    @Override
    int doReadlink(String path, ByteBuffer buf, long len) {
        Entry e = tree.resolve(path);
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

    @Override
    int doOpen(String path, FileInfo fi) {
        Entry e = tree.resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        if (e.isDirectory()) {
            return -errno.eisdir();
        }
        if (e.kind() == Kind.WHITEOUT) {
            return -errno.eacces();
        }
        if (fi.getOpenFlags().contains(java.nio.file.StandardOpenOption.WRITE)) {
            return -errno.erofs();
        }
        if (e.kind() == Kind.STATE_FILE) {
            NativeFields.directIo(fi);
        }
        long handle = nextHandle.getAndIncrement();
        // reads find the node by handle, not by walking the path again
        open.put(handle, new OpenFile(e.node(), e.node() == null ? null : new ReadAheadWindow(index, e.node(), options.readAheadBytes())));
        fi.setFh(handle);
        return 0;
    }

    @Override
    int doRead(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        OpenFile of = open.get(fi.getFh());
        if (of == null) {
            return -errno.ebadf();
        }
        if (of.node() == null) {
            byte[] json = tree.state().contents().get();
            int n = (int) Math.max(0, Math.min(size, json.length - offset));
            buf.put(json, (int) Math.min(offset, json.length), n);
            return n;
        }
        TocNode file = of.node();
        long end = Math.min(file.size(), offset + size);
        long pos = offset;
        try {
            List<Chunk> upcoming = of.ahead().read(offset, end);
            if (!upcoming.isEmpty()) {
                chunks.readAhead(upcoming);
            }
            while (pos < end) {
                Chunk chunk = index.chunk(file, index.chunkIndexAt(file, pos));
                int from = (int) (pos - chunk.fileOffset());
                int n = (int) Math.min(chunk.size() - from, end - pos);
                chunks.read(chunk, from, n, buf, networkSlots);
                pos += n;
            }
        } catch (IOException | RuntimeException ex) {
            LOG.log(Level.WARNING, "read of " + UnexpectedFailures.abbreviated(file.path()) + " at " + pos + " failed: " + ex.getMessage());
            return pos > offset ? (int) (pos - offset) : -errno.eio();
        }
        return (int) (pos - offset);
    }

    @Override
    int doRelease(String path, FileInfo fi) {
        open.remove(fi.getFh());
        return 0;
    }

    @Override
    int doOpendir(String path, FileInfo fi) {
        Entry e = tree.resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        return e.isDirectory() ? 0 : -errno.enotdir();
    }

    @Override
    int doReaddir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
        Entry e = tree.resolve(path);
        if (e == null || !e.isDirectory()) {
            return -errno.enoent();
        }
        List<Map.Entry<String, Entry>> listing = tree.listing(e);
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
    int doStatfs(String path, Statvfs statvfs) {
        statvfs.setBsize(4096);
        statvfs.setFrsize(4096);
        statvfs.setBlocks((tree.totalBytes() + 4095) / 4096);
        statvfs.setBfree(0);
        statvfs.setBavail(0);
        statvfs.setNameMax(255);
        return 0;
    }

    @Override
    int doGetxattr(String path, String name, ByteBuffer value) {
        Entry e = tree.resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        byte[] v = tree.xattrs(e).get(name);
        if (v == null) {
            return -errno.enodata();
        }
        return copyOut(v, value);
    }

    @Override
    int doListxattr(String path, ByteBuffer list) {
        Entry e = tree.resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        java.io.ByteArrayOutputStream names = new java.io.ByteArrayOutputStream();
        for (String name : tree.xattrs(e).keySet()) {
            names.writeBytes(name.getBytes(StandardCharsets.UTF_8));
            names.write(0);
        }
        return copyOut(names.toByteArray(), list);
    }

    /** xattr semantics: an empty buffer asks for the size; one too small gets ERANGE. */
    private int copyOut(byte[] bytes, ByteBuffer into) {
        if (into.capacity() == 0) {
            return bytes.length;
        }
        if (into.remaining() < bytes.length) {
            return -errno.erange();
        }
        into.put(bytes);
        return bytes.length;
    }
}
