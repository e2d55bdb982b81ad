package dev.starling.estargz;

import java.util.Arrays;
import java.util.Map;

/**
 * One file-system object of a layer. Hardlinked names share one node. Kept small on purpose: a
 * layer of 20,000 files holds 20,000 of these for as long as it is mounted.
 */
public final class TocNode {
    private static final String[] NO_NAMES = new String[0];
    private static final TocNode[] NO_NODES = new TocNode[0];

    final String name;
    TocNode parent;
    EntryType type;
    int id;
    int mode;
    int uid;
    int gid;
    int nlink;
    int devMajor;
    int devMinor;
    long size;
    long modTime;
    String linkTarget;
    String userName;
    String groupName;
    Map<String, byte[]> xattrs;
    /** Directories: children sorted by name; hardlink names point at their target's node. */
    String[] childNames = NO_NAMES;
    TocNode[] children = NO_NODES;
    /** Regular files: their chunks are [firstChunk, firstChunk + chunkCount) of the chunk table. */
    int firstChunk;
    int chunkCount;
    /** Whole-file digest, kept only when it cannot be read off a single chunk. */
    byte[] fileDigest;

    TocNode(String name, TocNode parent, EntryType type) {
        this.name = name;
        this.parent = parent;
        this.type = type;
    }

    /** Base name under which the node was first created ("" for the root). */
    public String name() {
        return name;
    }

    /** Normalised path without a leading slash ("" for the root); built by a loop, as a hostile tree can be very deep. */
    public String path() {
        java.util.ArrayDeque<String> names = new java.util.ArrayDeque<>();
        for (TocNode n = this; n.parent != null; n = n.parent) {
            names.addFirst(n.name);
        }
        return String.join("/", names);
    }

    public TocNode parent() {
        return parent;
    }

    public EntryType type() {
        return type;
    }

    /** Dense number from 0 (the root), for inode numbers. */
    public int id() {
        return id;
    }

    /** Permission bits with setuid, setgid and sticky (07777); the file type is {@link #type()}. */
    public int mode() {
        return mode;
    }

    public int uid() {
        return uid;
    }

    public int gid() {
        return gid;
    }

    public String userName() {
        return userName;
    }

    public String groupName() {
        return groupName;
    }

    public int linkCount() {
        return nlink;
    }

    public int devMajor() {
        return devMajor;
    }

    public int devMinor() {
        return devMinor;
    }

    /** File size for regular files, target length in bytes for symlinks (as readlink returns it), 0 otherwise. */
    public long size() {
        return type == EntryType.SYMLINK ? linkTarget.getBytes(java.nio.charset.StandardCharsets.UTF_8).length : size;
    }

    /** Modification time in Unix seconds; 0 when the TOC has none. */
    public long modTime() {
        return modTime;
    }

    /** Symlink target as stored ("" for other types). */
    public String linkTarget() {
        return linkTarget == null ? "" : linkTarget;
    }

    public Map<String, byte[]> xattrs() {
        return xattrs == null ? Map.of() : xattrs;
    }

    public boolean isDirectory() {
        return type == EntryType.DIR;
    }

    public int childCount() {
        return children.length;
    }

    public String childName(int i) {
        return childNames[i];
    }

    public TocNode child(int i) {
        return children[i];
    }

    /** The child named {@code name}, or null. */
    public TocNode child(String name) {
        int i = Arrays.binarySearch(childNames, name);
        return i >= 0 ? children[i] : null;
    }

    public int chunkCount() {
        return chunkCount;
    }

    @Override
    public String toString() {
        return type.json + " " + Digests.quote(path());
    }
}
