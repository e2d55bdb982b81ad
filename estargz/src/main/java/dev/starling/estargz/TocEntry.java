package dev.starling.estargz;

import java.util.Map;

/**
 * One entry of {@code stargz.index.json} exactly as serialised (compat doc section 1.5.2): names are
 * not normalised, zero means absent. {@code modTime} is Unix seconds (0 = absent); {@code xattrs}
 * values are raw bytes (base64 on the wire) and never null.
 */
public record TocEntry(
        String name, EntryType type, long size, long modTime, String linkName, long mode, int uid, int gid,
        String userName, String groupName, long offset, long innerOffset, int devMajor, int devMinor,
        Map<String, byte[]> xattrs, String digest, long chunkOffset, long chunkSize, String chunkDigest) {

    public TocEntry {
        xattrs = xattrs == null ? Map.of() : xattrs;
        linkName = linkName == null ? "" : linkName;
        userName = userName == null ? "" : userName;
        groupName = groupName == null ? "" : groupName;
        digest = digest == null ? "" : digest;
        chunkDigest = chunkDigest == null ? "" : chunkDigest;
    }

    /** True when this entry carries file data (a non-empty regular file's first chunk, or a chunk). */
    public boolean hasData() {
        return type == EntryType.CHUNK || type == EntryType.REG && size > 0;
    }
}
