package dev.starling.estargz;

import dev.starling.estargz.tar.TarHeader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Hostile layers for tests of other modules: a real blob whose TOC is edited and written back
 * with a correct TOC digest, so the result passes the manifest check and reaches the deep code.
 */
public final class HostileLayers {
    private HostileLayers() {
    }

    /** A blob and the digest of its (edited) TOC, the value of its toc.digest annotation. */
    public record Edited(byte[] blob, String tocDigest) {
    }

    /** {@code blob} with its TOC entries replaced by {@code edit}'s, payload untouched. */
    public static Edited editToc(byte[] blob, UnaryOperator<List<TocEntry>> edit) throws IOException {
        EStargzBlob.RawToc raw = EStargzBlob.readToc(RangeReader.of(blob), ReaderLimits.DEFAULT);
        return withToc(blob, raw.footer().tocOffset(), edit.apply(new ArrayList<>(raw.entries())));
    }

    /** A payload (members) followed by a TOC of {@code entries}: for layouts no converter writes. */
    public static Edited withToc(byte[] payload, long tocOffset, List<TocEntry> entries) throws IOException {
        byte[] json = TocJson.write(entries);
        ByteArrayOutputStream tocTar = new ByteArrayOutputStream();
        tocTar.write(TarHeader.regularFile(EStargzBlob.TOC_NAME, json.length).encode());
        tocTar.write(json);
        tocTar.write(new byte[(512 - json.length % 512) % 512 + 1024]);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(payload, 0, (int) tocOffset);
        try (var gz = new java.util.zip.GZIPOutputStream(out)) {
            gz.write(tocTar.toByteArray());
        }
        out.write(Footer.estargz(tocOffset));
        return new Edited(out.toByteArray(), Digests.format(Digests.sha256(json, 0, json.length)));
    }

    /** {@code e} with some fields changed: name, linkName, offset, chunkSize, chunkDigest, innerOffset, size. */
    public static TocEntry with(TocEntry e, Map<String, Object> changes) {
        return new TocEntry(
                (String) changes.getOrDefault("name", e.name()), e.type(), (long) changes.getOrDefault("size", e.size()),
                e.modTime(), (String) changes.getOrDefault("linkName", e.linkName()), e.mode(), e.uid(), e.gid(),
                e.userName(), e.groupName(), (long) changes.getOrDefault("offset", e.offset()),
                (long) changes.getOrDefault("innerOffset", e.innerOffset()), e.devMajor(), e.devMinor(), e.xattrs(),
                (String) changes.getOrDefault("digest", e.digest()), e.chunkOffset(),
                (long) changes.getOrDefault("chunkSize", e.chunkSize()),
                (String) changes.getOrDefault("chunkDigest", e.chunkDigest()));
    }
}
