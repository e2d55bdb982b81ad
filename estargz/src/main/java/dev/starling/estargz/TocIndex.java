package dev.starling.estargz;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The layer's tree and chunk table, built from TOC entries exactly as the reference reader
 * normalises them (compat doc section 1.5.3): names cleaned so nothing escapes the root, implicit
 * parents, last entry wins, hardlinks as the same node, link counts, next-boundary offsets.
 * Chunks live in parallel primitive arrays, not objects, so a mounted layer costs little heap.
 */
public final class TocIndex {
    public static final String PREFETCH_LANDMARK = ".prefetch.landmark";
    public static final String NO_PREFETCH_LANDMARK = ".no.prefetch.landmark";

    private final TocNode root;
    private final TocNode[] nodesById;
    private final long payloadEnd;
    private final long[] chunkFileOffset;
    private final long[] chunkCompressedOffset;
    private final long[] chunkCompressedEnd;
    private final int[] chunkSize;
    private final int[] chunkInnerOffset;
    /** 32 bytes per chunk; a chunk without a digest has all zeros and a clear bit in {@link #chunkHasDigest}. */
    private final byte[] chunkDigests;
    private final java.util.BitSet chunkHasDigest;
    /** Node id of the file each chunk belongs to; chunks of a file replaced by a later entry of the same name are nobody's. */
    private final int[] chunkOwner;

    private TocIndex(Builder b) {
        this.root = b.root;
        this.payloadEnd = b.payloadEnd;
        this.chunkFileOffset = Arrays.copyOf(b.fileOffset, b.chunks);
        this.chunkCompressedOffset = Arrays.copyOf(b.compressedOffset, b.chunks);
        this.chunkCompressedEnd = Arrays.copyOf(b.compressedEnd, b.chunks);
        this.chunkSize = Arrays.copyOf(b.size, b.chunks);
        this.chunkInnerOffset = Arrays.copyOf(b.innerOffset, b.chunks);
        this.chunkDigests = Arrays.copyOf(b.digests, b.chunks * 32);
        this.chunkHasDigest = b.hasDigest;
        this.nodesById = b.nodesById;
        this.chunkOwner = new int[b.chunks];
        for (int c = 0; c < b.chunks; c++) {
            TocNode file = b.owner[c];
            // a node dropped from the tree (its name redefined by a later entry) keeps no id of its own
            chunkOwner[c] = file.id < nodesById.length && nodesById[file.id] == file ? file.id : 0;
        }
    }

    /** Builds the index; throws naming the first offending entry when the TOC is inconsistent. */
    public static TocIndex build(List<TocEntry> entries, long payloadEnd, ReaderLimits limits)
            throws InvalidBlobException {
        Builder b = new Builder(payloadEnd, limits, entries.size());
        b.addAll(entries);
        return new TocIndex(b);
    }

    public TocNode root() {
        return root;
    }

    /** Number of distinct nodes in the tree, the root included (hardlinks count once). */
    public int nodeCount() {
        return nodesById.length;
    }

    public TocNode node(int id) {
        return nodesById[id];
    }

    /** Compressed offset where chunk payload ends (the TOC starts after it). */
    public long payloadEnd() {
        return payloadEnd;
    }

    /** Looks a path up (any form: {@code ./a/b}, {@code /a/b}, {@code a/b/}); null when absent. */
    public TocNode lookup(String path) {
        TocNode node = root;
        String clean = Paths.clean(path);
        if (clean.isEmpty()) {
            return root;
        }
        for (String part : clean.split("/")) {
            node = node.child(part);
            if (node == null) {
                return null;
            }
        }
        return node;
    }

    public Chunk chunk(TocNode file, int i) {
        if (i < 0 || i >= file.chunkCount) {
            throw new IndexOutOfBoundsException(i + " of " + file.chunkCount + " chunks of " + file);
        }
        int c = file.firstChunk + i;
        byte[] digest = chunkHasDigest.get(c) ? Arrays.copyOfRange(chunkDigests, c * 32, c * 32 + 32) : null;
        return new Chunk(file, chunkFileOffset[c], chunkSize[c], chunkCompressedOffset[c], chunkInnerOffset[c],
                chunkCompressedEnd[c], digest, c);
    }

    /** Chunks in the table, in blob order (the TOC is checked to be in strictly increasing offset order). */
    public int chunkTotal() {
        return chunkOwner.length;
    }

    /** The chunk at {@code index} in blob order, or null when no file in the tree owns it (a replaced entry). */
    public Chunk chunkAt(int index) {
        TocNode file = nodesById[chunkOwner[index]];
        if (index < file.firstChunk || index >= file.firstChunk + file.chunkCount) {
            return null;
        }
        return chunk(file, index - file.firstChunk);
    }

    /**
     * The chunk that starts {@code innerOffset} bytes into the member at {@code compressedOffset},
     * or null when the TOC lists none there (or only one no file owns): how a node checks that what
     * a peer asks for is a chunk of this layer, and takes its size and digest from the TOC, not the peer.
     */
    public Chunk chunkAt(long compressedOffset, long innerOffset) {
        for (int c = firstChunkFrom(compressedOffset); c < chunkCompressedOffset.length
                && chunkCompressedOffset[c] == compressedOffset; c++) {
            if (chunkInnerOffset[c] == innerOffset) {
                return chunkAt(c);
            }
        }
        return null;
    }

    /**
     * Index of the first chunk (in blob order) whose member starts at or after {@code compressedOffset},
     * or {@link #chunkTotal()} when none does.
     */
    public int firstChunkFrom(long compressedOffset) {
        int lo = 0, hi = chunkCompressedOffset.length;
        while (lo < hi) { // the table is in blob order
            int mid = (lo + hi) >>> 1;
            if (chunkCompressedOffset[mid] < compressedOffset) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** Index of the chunk of {@code file} holding byte {@code offset}, or -1 at or past the end. */
    public int chunkIndexAt(TocNode file, long offset) {
        if (offset < 0 || offset >= file.size || file.chunkCount == 0) {
            return -1;
        }
        int lo = file.firstChunk, hi = file.firstChunk + file.chunkCount - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (chunkFileOffset[mid] <= offset) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo - file.firstChunk;
    }

    /** The whole-file sha256 when it differs from the single chunk's (multi-chunk files), else null. */
    public byte[] fileDigest(TocNode file) {
        return file.fileDigest == null ? null : file.fileDigest.clone();
    }

    /** The {@code .prefetch.landmark} at the root, or null. */
    public TocNode prefetchLandmark() {
        TocNode n = root.child(PREFETCH_LANDMARK);
        return n != null && n.type == EntryType.REG && n.chunkCount > 0 ? n : null;
    }

    /** True when the producer asked for no prefetch ({@code .no.prefetch.landmark} at the root). */
    public boolean noPrefetch() {
        TocNode n = root.child(NO_PREFETCH_LANDMARK);
        return n != null && n.type == EntryType.REG;
    }

    /** End of the prioritized area, [0, end) in compressed bytes; 0 when there is none. */
    public long prioritizedEnd() {
        TocNode landmark = prefetchLandmark();
        return landmark == null || noPrefetch() ? 0 : chunkCompressedOffset[landmark.firstChunk];
    }

    public static boolean isLandmark(TocNode node) {
        return node.parent != null && node.parent.parent == null
                && (node.name.equals(PREFETCH_LANDMARK) || node.name.equals(NO_PREFETCH_LANDMARK));
    }

    private static final class Builder {
        final long payloadEnd;
        final ReaderLimits limits;
        final TocNode root = new TocNode("", null, EntryType.DIR);
        final Map<TocNode, Map<String, TocNode>> dirs = new IdentityHashMap<>();
        final Map<String, String> interned = new HashMap<>();
        final Map<Integer, String> userNames = new HashMap<>();
        final Map<Integer, String> groupNames = new HashMap<>();
        /** A hardlink whose target appears later in the TOC (entry number, its path, target, message prefix). */
        record DeferredLink(int index, String path, String target, String where) {
        }

        final List<DeferredLink> deferredLinks = new ArrayList<>();
        final Map<String, Integer> lastDefinition = new HashMap<>();
        TocNode[] nodesById;

        int chunks;
        long[] fileOffset, compressedOffset, compressedEnd;
        int[] size, innerOffset;
        TocNode[] owner;
        byte[] digests;
        final java.util.BitSet hasDigest = new java.util.BitSet();
        // State of the regular file whose chunks are being read.
        TocNode currentFile;
        String currentFileName;
        long lastDataOffset = -1, lastDataInner = -1;

        Builder(long payloadEnd, ReaderLimits limits, int capacity) {
            this.payloadEnd = payloadEnd;
            this.limits = limits;
            int n = Math.max(16, Math.min(capacity, 1 << 20));
            fileOffset = new long[n];
            compressedOffset = new long[n];
            compressedEnd = new long[n];
            size = new int[n];
            innerOffset = new int[n];
            owner = new TocNode[n];
            digests = new byte[n * 32];
            root.mode = 0755;
            dirs.put(root, new HashMap<>());
        }

        void addAll(List<TocEntry> entries) throws InvalidBlobException {
            String[] names = new String[entries.size()];
            for (int i = 0; i < names.length; i++) {
                TocEntry e = entries.get(i);
                if (e.type() != EntryType.CHUNK) {
                    names[i] = Paths.clean(e.name());
                    if (names[i].indexOf('\0') >= 0) {
                        throw new InvalidBlobException("TOC entry " + Digests.quote(e.name()) + " has a NUL in its name");
                    }
                    checkName(names[i], e);
                    lastDefinition.put(names[i], i);
                }
            }
            for (int i = 0; i < names.length; i++) {
                TocEntry e = entries.get(i);
                if (e.type() == EntryType.CHUNK) {
                    addChunk(e);
                } else {
                    finishFile();
                    addEntry(i, names[i], e);
                }
            }
            finishFile();
            resolveDeferredLinks();
            computeBoundaries();
            freeze();
        }

        /** Names the kernel can return and paths a program can reach; anything else is refused with the layer. */
        void checkName(String path, TocEntry e) throws InvalidBlobException {
            int depth = 0;
            int start = 0;
            while (start < path.length()) {
                int end = path.indexOf('/', start);
                end = end < 0 ? path.length() : end;
                int bytes = path.substring(start, end).getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
                if (bytes > ReaderLimits.MAX_NAME_BYTES) {
                    throw new InvalidBlobException("TOC entry " + Digests.quote(abbreviate(e.name())) + " has a " + bytes
                            + "-byte name; the kernel returns names of at most " + ReaderLimits.MAX_NAME_BYTES);
                }
                if (++depth > limits.maxDepth()) {
                    throw new InvalidBlobException("TOC entry " + Digests.quote(abbreviate(e.name())) + " is more than "
                            + limits.maxDepth() + " directories deep");
                }
                start = end + 1;
            }
            if (e.type() == EntryType.SYMLINK) {
                String target = e.linkName();
                int bytes = target.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
                if (target.isEmpty() || target.indexOf('\0') >= 0 || bytes > ReaderLimits.MAX_LINK_TARGET_BYTES) {
                    throw new InvalidBlobException("TOC entry " + Digests.quote(abbreviate(e.name())) + " is a symlink to "
                            + (target.isEmpty() ? "nothing" : target.indexOf('\0') >= 0 ? "a target with a NUL"
                            : "a " + bytes + "-byte target (at most " + ReaderLimits.MAX_LINK_TARGET_BYTES + ")"));
                }
            }
        }

        static String abbreviate(String name) {
            return name.length() <= 200 ? name : name.substring(0, 100) + "..." + name.substring(name.length() - 60);
        }

        void addEntry(int index, String path, TocEntry e) throws InvalidBlobException {
            String where = "TOC entry " + Digests.quote(e.name());
            if (e.type() == EntryType.HARDLINK) {
                String target = Paths.clean(e.linkName());
                TocNode t = lookup(target);
                if (t == null || t.type == EntryType.DIR) {
                    deferredLinks.add(new DeferredLink(index, path, target, where));
                } else {
                    bind(path, t, where);
                }
                return;
            }
            if (path.isEmpty()) {
                if (e.type() != EntryType.DIR) {
                    throw new InvalidBlobException(where + " names the root but is a " + e.type().json);
                }
                setAttributes(root, e);
                return;
            }
            TocNode parent = ensureDir(Paths.parent(path), where);
            String base = Paths.base(path);
            TocNode existing = dirs.get(parent).get(base);
            TocNode node;
            if (existing != null && existing.type == EntryType.DIR && e.type() == EntryType.DIR) {
                node = existing; // a repeated directory keeps its children
            } else {
                node = new TocNode(intern(base), parent, e.type());
                if (e.type() == EntryType.DIR) {
                    dirs.put(node, new HashMap<>());
                }
                if (existing != null) {
                    dirs.remove(existing);
                }
                dirs.get(parent).put(node.name, node);
            }
            setAttributes(node, e);
            if (e.type() == EntryType.REG) {
                startFile(node, e, where);
            }
        }

        void setAttributes(TocNode node, TocEntry e) {
            node.mode = (int) (e.mode() & 07777);
            node.uid = e.uid();
            node.gid = e.gid();
            node.userName = fillForward(userNames, e.uid(), e.userName());
            node.groupName = fillForward(groupNames, e.gid(), e.groupName());
            node.modTime = e.modTime();
            node.size = e.type() == EntryType.REG ? e.size() : 0;
            node.linkTarget = e.type() == EntryType.SYMLINK ? e.linkName() : null;
            node.devMajor = e.devMajor();
            node.devMinor = e.devMinor();
            node.xattrs = e.xattrs().isEmpty() ? null : Map.copyOf(e.xattrs());
        }

        String fillForward(Map<Integer, String> names, int id, String name) {
            if (name.isEmpty()) {
                return names.getOrDefault(id, "");
            }
            String n = intern(name);
            names.put(id, n);
            return n;
        }

        String intern(String s) {
            String known = interned.putIfAbsent(s, s);
            return known == null ? s : known;
        }

        TocNode lookup(String path) {
            TocNode node = root;
            if (path.isEmpty()) {
                return node;
            }
            for (String part : path.split("/")) {
                Map<String, TocNode> children = dirs.get(node);
                node = children == null ? null : children.get(part);
                if (node == null) {
                    return null;
                }
            }
            return node;
        }

        TocNode ensureDir(String path, String where) throws InvalidBlobException {
            TocNode node = root;
            if (path.isEmpty()) {
                return node;
            }
            for (String part : path.split("/")) {
                Map<String, TocNode> children = dirs.get(node);
                TocNode next = children.get(part);
                if (next == null) {
                    next = new TocNode(intern(part), node, EntryType.DIR);
                    next.mode = 0755;
                    next.userName = "";
                    next.groupName = "";
                    children.put(next.name, next);
                    dirs.put(next, new HashMap<>());
                } else if (next.type != EntryType.DIR) {
                    throw new InvalidBlobException(where + ": parent " + Digests.quote(next.path()) + " is a "
                            + next.type.json + ", not a directory");
                }
                node = next;
            }
            return node;
        }

        void bind(String path, TocNode target, String where) throws InvalidBlobException {
            if (path.isEmpty()) {
                throw new InvalidBlobException(where + " makes the root a hardlink");
            }
            TocNode parent = ensureDir(Paths.parent(path), where);
            TocNode existing = dirs.get(parent).put(intern(Paths.base(path)), target);
            if (existing != null && existing != target) {
                dirs.remove(existing);
            }
        }

        void resolveDeferredLinks() throws InvalidBlobException {
            boolean progress = true;
            while (!deferredLinks.isEmpty() && progress) {
                progress = false;
                for (var it = deferredLinks.iterator(); it.hasNext(); ) {
                    DeferredLink link = it.next();
                    TocNode t = lookup(link.target());
                    if (t != null && t.type != EntryType.DIR) {
                        if (lastDefinition.get(link.path()) == link.index()) {
                            bind(link.path(), t, link.where());
                        }
                        it.remove();
                        progress = true;
                    }
                }
            }
            if (!deferredLinks.isEmpty()) {
                DeferredLink link = deferredLinks.getFirst();
                TocNode t = lookup(link.target());
                throw new InvalidBlobException(link.where() + " is a hardlink to " + Digests.quote(link.target())
                        + (t != null ? ", a directory" : ", which is not in the layer (or forms a hardlink loop)"));
            }
        }

        void startFile(TocNode node, TocEntry e, String where) throws InvalidBlobException {
            currentFile = node;
            currentFileName = e.name();
            node.firstChunk = chunks;
            node.chunkCount = 0;
            if (e.hasData()) {
                if (e.chunkOffset() != 0) {
                    throw new InvalidBlobException(where + " starts at chunk offset " + e.chunkOffset() + ", not 0");
                }
                appendChunk(e, e.size(), e.chunkDigest().isEmpty() ? e.digest() : e.chunkDigest(), where);
            }
            if (!e.digest().isEmpty()) {
                byte[] fileDigest = Digests.parse(e.digest());
                node.fileDigest = fileDigest; // dropped in finishFile when chunk 0 carries the same value
            }
        }

        void addChunk(TocEntry e) throws InvalidBlobException {
            if (currentFile == null) {
                throw new InvalidBlobException("TOC chunk entry at offset " + e.offset()
                        + " does not follow a non-empty regular file");
            }
            appendChunk(e, currentFile.size, e.chunkDigest(), "TOC entry " + Digests.quote(currentFileName)
                    + " chunk at " + e.chunkOffset());
        }

        void appendChunk(TocEntry e, long fileSize, String digest, String where) throws InvalidBlobException {
            long length = e.chunkSize() != 0 ? e.chunkSize() : fileSize - e.chunkOffset();
            if (length <= 0 || length > limits.maxChunkSize()) {
                throw new InvalidBlobException(where + ": chunk size " + length + " is outside 1.."
                        + limits.maxChunkSize());
            }
            if (e.innerOffset() + length > limits.maxMemberBytes()) {
                throw new InvalidBlobException(where + ": inner offset " + e.innerOffset() + " plus size " + length
                        + " exceeds the " + limits.maxMemberBytes() + "-byte member limit");
            }
            if (e.offset() >= payloadEnd) {
                throw new InvalidBlobException(where + ": offset " + e.offset() + " is at or past the TOC ("
                        + payloadEnd + ")");
            }
            if (e.offset() < lastDataOffset || e.offset() == lastDataOffset && e.innerOffset() <= lastDataInner) {
                throw new InvalidBlobException(where + ": offset " + e.offset() + "+" + e.innerOffset()
                        + (e.offset() == lastDataOffset && e.innerOffset() == lastDataInner ? " repeats" : " goes back from")
                        + " the previous data entry's " + lastDataOffset + "+" + lastDataInner);
            }
            lastDataOffset = e.offset();
            lastDataInner = e.innerOffset();
            if (chunks == size.length) {
                int n = chunks * 2;
                fileOffset = Arrays.copyOf(fileOffset, n);
                compressedOffset = Arrays.copyOf(compressedOffset, n);
                compressedEnd = Arrays.copyOf(compressedEnd, n);
                size = Arrays.copyOf(size, n);
                innerOffset = Arrays.copyOf(innerOffset, n);
                owner = Arrays.copyOf(owner, n);
                digests = Arrays.copyOf(digests, n * 32);
            }
            fileOffset[chunks] = e.chunkOffset();
            compressedOffset[chunks] = e.offset();
            size[chunks] = (int) length;
            innerOffset[chunks] = (int) e.innerOffset();
            owner[chunks] = currentFile;
            if (!digest.isEmpty()) {
                System.arraycopy(Digests.parse(digest), 0, digests, chunks * 32, 32);
                hasDigest.set(chunks);
            }
            chunks++;
            currentFile.chunkCount++;
        }

        /** Checks that the current file's chunks tile [0, size) exactly. */
        void finishFile() throws InvalidBlobException {
            TocNode f = currentFile;
            if (f == null) {
                return;
            }
            currentFile = null;
            long expected = 0;
            for (int c = f.firstChunk; c < f.firstChunk + f.chunkCount; c++) {
                if (fileOffset[c] != expected) {
                    throw new InvalidBlobException("TOC entry " + Digests.quote(currentFileName) + ": chunk at "
                            + fileOffset[c] + " should start at " + expected);
                }
                expected += size[c];
            }
            if (expected != f.size) {
                throw new InvalidBlobException("TOC entry " + Digests.quote(currentFileName) + ": chunks cover "
                        + expected + " bytes of a " + f.size + "-byte file");
            }
            if (f.fileDigest != null && (f.chunkCount == 0 || f.chunkCount == 1 && hasDigest.get(f.firstChunk)
                    && Arrays.equals(f.fileDigest, 0, 32, digests, f.firstChunk * 32, f.firstChunk * 32 + 32))) {
                f.fileDigest = null;
            }
        }

        /** Each chunk's span ends where the next member starts (compat doc 1.5.3 step 4). */
        void computeBoundaries() throws InvalidBlobException {
            long next = payloadEnd;
            for (int c = chunks - 1; c >= 0; c--) {
                compressedEnd[c] = next;
                if (next - compressedOffset[c] > limits.maxMemberBytes()) {
                    throw new InvalidBlobException("a member at offset " + compressedOffset[c] + " spans "
                            + (next - compressedOffset[c]) + " compressed bytes, over the "
                            + limits.maxMemberBytes() + "-byte limit");
                }
                if (innerOffset[c] == 0 && compressedOffset[c] != 0) {
                    next = compressedOffset[c];
                }
            }
        }

        /** Sorted child arrays, link counts and dense ids, then the building maps are dropped. */
        void freeze() {
            Map<TocNode, Integer> names = new IdentityHashMap<>();
            List<TocNode> order = new ArrayList<>();
            ArrayList<TocNode> stack = new ArrayList<>();
            stack.add(root);
            names.put(root, 1);
            while (!stack.isEmpty()) {
                TocNode dir = stack.removeLast();
                order.add(dir);
                Map<String, TocNode> children = new TreeMap<>(dirs.get(dir));
                dir.childNames = children.keySet().toArray(new String[0]);
                dir.children = children.values().toArray(new TocNode[0]);
                int subdirs = 0;
                for (TocNode child : dir.children) {
                    if (child.type == EntryType.DIR) {
                        subdirs++;
                        names.put(child, 1);
                        stack.add(child);
                    } else if (names.merge(child, 1, Integer::sum) == 1) {
                        order.add(child);
                    }
                }
                dir.nlink = 2 + subdirs;
            }
            for (TocNode n : order) {
                if (n.type != EntryType.DIR) {
                    n.nlink = names.get(n);
                }
            }
            nodesById = order.toArray(new TocNode[0]);
            for (int i = 0; i < nodesById.length; i++) {
                nodesById[i].id = i;
            }
        }
    }
}
