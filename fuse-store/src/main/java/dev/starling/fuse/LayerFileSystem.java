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
import java.util.EnumSet;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
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
    private static final byte[] OPAQUE_VALUE = "y".getBytes(StandardCharsets.US_ASCII);
    private static final Set<String> OPAQUE_XATTRS = Set.of("trusted.overlay.opaque", "user.overlay.opaque");

    private final TocIndex index;
    private final ChunkSource chunks;
    private final Errno errno;
    /** Per directory, the whiteouts it shows as character devices, with their inode numbers. */
    private final Map<TocNode, Map<String, Long>> whiteouts = new IdentityHashMap<>();
    /** Sum of regular file sizes, for statfs. */
    private final long totalBytes;

    public LayerFileSystem(TocIndex index, ChunkSource chunks, Errno errno) {
        this.index = index;
        this.chunks = chunks;
        this.errno = errno;
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
        NativeFields.useIno(config);
    }

    /** A path resolved: a node, or a whiteout shown as a device (node null). */
    private record Entry(TocNode node, long ino) {
        boolean whiteout() {
            return node == null;
        }
    }

    private Entry resolve(String path) {
        TocNode node = index.root();
        if (path.equals("/") || path.isEmpty()) {
            return new Entry(node, 1);
        }
        String[] parts = path.substring(1).split("/");
        for (int i = 0; i < parts.length; i++) {
            String name = parts[i];
            if (!node.isDirectory() || hidden(node, name)) {
                return null;
            }
            TocNode child = node.child(name);
            if (child == null) {
                Long ino = whiteouts.getOrDefault(node, Map.of()).get(name);
                return ino != null && i == parts.length - 1 ? new Entry(null, ino) : null;
            }
            node = child;
        }
        return new Entry(node, node.id() + 1L);
    }

    private static boolean hidden(TocNode dir, String name) {
        return name.startsWith(WHITEOUT_PREFIX)
                || dir.parent() == null && (name.equals(TocIndex.PREFETCH_LANDMARK) || name.equals(TocIndex.NO_PREFETCH_LANDMARK));
    }

    @Override
    public int getattr(String path, Stat stat, FileInfo fi) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        fill(stat, e);
        return 0;
    }

    private void fill(Stat stat, Entry e) {
        if (e.whiteout()) {
            stat.setMode(Stat.S_IFCHR);
            stat.setNLink((short) 1);
            stat.setUid(0);
            stat.setGid(0);
            stat.setSize(0);
            NativeFields.set(stat, e.ino(), 0, 0);
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
        NativeFields.set(stat, e.ino(), rdev, n.type() == EntryType.REG ? n.size() : 0);
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
    public int readlink(String path, ByteBuffer buf, long len) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        if (e.whiteout() || e.node().type() != EntryType.SYMLINK) {
            return -errno.einval();
        }
        byte[] target = e.node().linkTarget().getBytes(StandardCharsets.UTF_8);
        int n = (int) Math.min(target.length, len - 1);
        buf.put(target, 0, n).put((byte) 0);
        return 0;
    }

    @Override
    public int open(String path, FileInfo fi) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        if (e.whiteout() || e.node().isDirectory()) {
            return -errno.eisdir();
        }
        if (fi.getOpenFlags().contains(java.nio.file.StandardOpenOption.WRITE)) {
            return -errno.erofs();
        }
        fi.setFh(e.node().id()); // reads find the node by handle, not by walking the path again
        return 0;
    }

    @Override
    public int read(String path, ByteBuffer buf, long size, long offset, FileInfo fi) {
        TocNode file = index.node((int) fi.getFh());
        long end = Math.min(file.size(), offset + size);
        long pos = offset;
        try {
            while (pos < end) {
                Chunk chunk = index.chunk(file, index.chunkIndexAt(file, pos));
                byte[] data = chunks.read(chunk);
                int from = (int) (pos - chunk.fileOffset());
                int n = (int) Math.min(data.length - from, end - pos);
                buf.put(data, from, n);
                pos += n;
            }
        } catch (IOException | RuntimeException ex) {
            LOG.log(Level.WARNING, "read of " + file.path() + " at " + pos + " failed: " + ex.getMessage());
            return pos > offset ? (int) (pos - offset) : -errno.eio();
        }
        return (int) (pos - offset);
    }

    @Override
    public int release(String path, FileInfo fi) {
        return 0;
    }

    @Override
    public int opendir(String path, FileInfo fi) {
        Entry e = resolve(path);
        if (e == null) {
            return -errno.enoent();
        }
        return e.whiteout() || !e.node().isDirectory() ? -errno.enotdir() : 0;
    }

    @Override
    public int readdir(String path, DirFiller filler, long offset, FileInfo fi, int flags) {
        Entry e = resolve(path);
        if (e == null || e.whiteout() || !e.node().isDirectory()) {
            return -errno.enoent();
        }
        TocNode dir = e.node();
        TreeMap<String, Entry> listing = new TreeMap<>();
        for (int i = 0; i < dir.childCount(); i++) {
            String name = dir.childName(i);
            if (!hidden(dir, name)) {
                listing.put(name, new Entry(dir.child(i), dir.child(i).id() + 1L));
            }
        }
        whiteouts.getOrDefault(dir, Map.of()).forEach((name, ino) -> listing.put(name, new Entry(null, ino)));
        filler.fill(".", st -> fill(st, e), 0, 0);
        TocNode parent = dir.parent() == null ? dir : dir.parent();
        filler.fill("..", st -> fill(st, new Entry(parent, parent.id() + 1L)), 0, 0);
        for (Map.Entry<String, Entry> child : listing.entrySet()) {
            if (filler.fill(child.getKey(), st -> fill(st, child.getValue()), 0, 0) != 0) {
                return -errno.enomem();
            }
        }
        return 0;
    }

    @Override
    public int releasedir(String path, FileInfo fi) {
        return 0;
    }

    @Override
    public int statfs(String path, Statvfs statvfs) {
        statvfs.setBsize(4096);
        statvfs.setFrsize(4096);
        statvfs.setBlocks((totalBytes + 4095) / 4096);
        statvfs.setBfree(0);
        statvfs.setBavail(0);
        statvfs.setNameMax(255);
        return 0;
    }

    private Map<String, byte[]> xattrs(Entry e) {
        if (e.whiteout()) {
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

    @Override
    public int getxattr(String path, String name, ByteBuffer value) {
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

    @Override
    public int listxattr(String path, ByteBuffer list) {
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
