package dev.starling.fuse;

import dev.starling.estargz.EntryType;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.TocNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A layer's tree as its mount shows it (compat doc section 1.13), apart from FUSE: paths resolved to
 * TOC nodes; whiteouts shown as 0:0 character devices with inode numbers of their own; opaque
 * directories carrying {@code trusted.overlay.opaque} and {@code user.overlay.opaque}; landmarks
 * and whiteout files hidden; the state directory and file; listings in name order.
 */
final class LayerTree {
    static final String WHITEOUT_PREFIX = ".wh.";
    static final String OPAQUE_MARKER = ".wh..wh..opq";
    private static final byte[] OPAQUE_VALUE = "y".getBytes(StandardCharsets.US_ASCII);
    private static final Set<String> OPAQUE_XATTRS = Set.of("trusted.overlay.opaque", "user.overlay.opaque");
    /** How many listings are kept: a few walkers' current directories. */
    private static final int LISTINGS_KEPT = 16;

    /** What a path names: a node, a whiteout shown as a device, or the state directory or file. */
    enum Kind { NODE, WHITEOUT, STATE_DIR, STATE_FILE }

    record Entry(Kind kind, TocNode node, long ino) {
        static Entry of(TocNode node) {
            return new Entry(Kind.NODE, node, node.id() + 1L);
        }

        boolean isNode() {
            return kind == Kind.NODE;
        }

        boolean isDirectory() {
            return kind == Kind.STATE_DIR || kind == Kind.NODE && node.isDirectory();
        }
    }

    private final TocIndex index;
    private final StateFile state;
    /** Per directory, the whiteouts it shows as character devices, with their inode numbers. */
    private final Map<TocNode, Map<String, Long>> whiteouts = new IdentityHashMap<>();
    private final long stateDirIno;
    /** Sum of regular file sizes, for statfs. */
    private final long totalBytes;
    private final Map<TocNode, List<Map.Entry<String, Entry>>> listings = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<TocNode, List<Map.Entry<String, LayerTree.Entry>>> eldest) {
            return size() > LISTINGS_KEPT;
        }
    };

    /** @param state shown under {@link StateFile#DIRECTORY} at the root, or null */
    LayerTree(TocIndex index, StateFile state) {
        this.index = index;
        this.state = state;
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

    TocIndex index() {
        return index;
    }

    StateFile state() {
        return state;
    }

    long totalBytes() {
        return totalBytes;
    }

    /** What {@code path} names, or null when nothing. */
    Entry resolve(String path) {
        TocNode node = index.root();
        if (path.equals("/") || path.isEmpty()) {
            return Entry.of(node);
        }
        String[] parts = path.substring(1).split("/");
        if (state != null && parts[0].equals(StateFile.DIRECTORY)) {
            if (parts.length == 1) {
                return new Entry(Kind.STATE_DIR, null, stateDirIno);
            }
            return parts.length == 2 && parts[1].equals(state.name()) ? stateFile() : null;
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

    private Entry stateFile() {
        return new Entry(Kind.STATE_FILE, null, stateDirIno + 1);
    }

    private boolean hidden(TocNode dir, String name) {
        return name.startsWith(WHITEOUT_PREFIX)
                || dir.parent() == null && (name.equals(TocIndex.PREFETCH_LANDMARK) || name.equals(TocIndex.NO_PREFETCH_LANDMARK)
                || state != null && name.equals(StateFile.DIRECTORY));
    }

    /**
     * A directory's entries, {@code .} and {@code ..} first, then in name order, the same for every
     * call of one listing: the kernel reads a directory in several calls (its buffer holds a few
     * dozen entries with their attributes), so the last few listings are kept rather than sorted
     * again for each call.
     */
    List<Map.Entry<String, Entry>> listing(Entry e) {
        if (e.kind() == Kind.STATE_DIR) {
            return List.of(Map.entry(".", e), Map.entry("..", Entry.of(index.root())), Map.entry(state.name(), stateFile()));
        }
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

    /** An entry's extended attributes, in name order; an opaque directory's carry overlayfs' markers. */
    Map<String, byte[]> xattrs(Entry e) {
        if (!e.isNode()) {
            return Map.of();
        }
        TocNode n = e.node();
        if (n.isDirectory() && n.child(OPAQUE_MARKER) != null) {
            Map<String, byte[]> all = new TreeMap<>(n.xattrs());
            OPAQUE_XATTRS.forEach(k -> all.put(k, OPAQUE_VALUE));
            return all;
        }
        return new TreeMap<>(n.xattrs());
    }
}
