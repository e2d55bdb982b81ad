package dev.starling.estargz.write;

import dev.starling.estargz.Digests;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.EntryType;
import dev.starling.estargz.Footer;
import dev.starling.estargz.InvalidBlobException;
import dev.starling.estargz.Paths;
import dev.starling.estargz.TocEntry;
import dev.starling.estargz.TocJson;
import dev.starling.estargz.tar.TarEntry;
import dev.starling.estargz.tar.TarHeader;
import dev.starling.estargz.tar.TarReader;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Converts a tar layer (plain, gzip or zstd) into an eStargz blob (compat doc sections 1.1-1.8).
 * Every chunk starts a gzip member whose compressed offset the TOC records; members are compressed
 * in parallel and written in order. The output is written to a temporary file and renamed, so a
 * failed conversion leaves nothing behind.
 */
public final class Converter {
    private static final byte LANDMARK_CONTENT = 0x0f;

    /** Progress in input bytes; called from the converting thread. */
    public interface Progress {
        void update(long done, long total);

        Progress NONE = (done, total) -> {
        };
    }

    private final ConvertOptions options;
    private final Progress progress;

    public Converter(ConvertOptions options, Progress progress) {
        this.options = options;
        this.progress = progress;
    }

    public static ConvertResult convert(Path input, Path output, ConvertOptions options) throws IOException {
        return new Converter(options, Progress.NONE).convert(input, output);
    }

    public ConvertResult convert(Path input, Path output) throws IOException {
        Path dir = output.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, ".starling-convert-", ".tmp");
        try (PlainTar tar = PlainTar.of(input, dir)) {
            ConvertResult result;
            try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 20)) {
                result = write(tar.path, out);
            }
            Files.move(tmp, output, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return result;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private ConvertResult write(Path tarFile, OutputStream out) throws IOException {
        try (TarReader reader = new TarReader(tarFile)) {
            List<TarEntry> entries = reader.readAll();
            long total = Files.size(tarFile);
            MessageDigest blobDigest = Digests.sha256();
            try (MemberWriter members = options.minChunkSize() > 0
                    ? MemberWriter.streaming(out, blobDigest, options.level())
                    : MemberWriter.parallel(out, blobDigest, options.level(), options.threads())) {
                Layout layout = new Layout(reader, members, total);
                if (options.lossless()) {
                    for (TarEntry e : entries) {
                        if (Paths.clean(e.header().name).equals(EStargzBlob.TOC_NAME)) {
                            throw new InvalidBlobException("the input already holds " + EStargzBlob.TOC_NAME
                                    + "; a lossless conversion cannot drop it (convert without --lossless)");
                        }
                        layout.addLossless(e);
                    }
                    layout.appendRaw(entries.isEmpty() ? 0 : entries.getLast().end(), total);
                } else {
                    for (EntryOrder.Item item : EntryOrder.sort(entries, options.prioritizedFiles(), options.prioritizedInAnyLayer())) {
                        if (item.entry() == null) {
                            layout.addLandmark(item.landmark());
                        } else {
                            layout.addLossy(item.entry());
                        }
                    }
                }
                return layout.finish(blobDigest);
            }
        }
    }

    /** Lays entries out in members and collects the TOC; offsets resolve once members are written. */
    private final class Layout {
        private final TarReader source;
        private final MemberWriter members;
        private final long total;
        private final MessageDigest diffId = Digests.sha256();
        private final List<PendingEntry> toc = new ArrayList<>();
        private final Map<Long, String> userNames = new HashMap<>();
        private final Map<Long, String> groupNames = new HashMap<>();
        private long uncompressed;

        Layout(TarReader source, MemberWriter members, long total) {
            this.source = source;
            this.members = members;
            this.total = total;
        }

        void addLossy(TarEntry e) throws IOException {
            TarHeader h = e.header();
            append(h.encode());
            addFile(e, h, false);
            if (h.hasData() && h.size % 512 != 0) {
                append(new byte[(int) (512 - h.size % 512)]);
            }
            progress.update(e.end(), total);
        }

        void addLossless(TarEntry e) throws IOException {
            appendRaw(e.headerOffset(), e.payloadOffset());
            addFile(e, e.header(), true);
            appendRaw(e.payloadOffset() + (e.header().hasData() ? e.header().size : 0), e.end());
            progress.update(e.end(), total);
        }

        void addLandmark(String name) throws IOException {
            append(TarHeader.regularFile(name, 1).encode());
            PendingEntry entry = new PendingEntry(name, EntryType.REG);
            entry.size = 1;
            startChunk(entry, true);
            byte[] content = {LANDMARK_CONTENT};
            entry.digest = entry.chunkDigest = Digests.format(Digests.sha256(content, 0, 1));
            append(content);
            append(new byte[511]);
            toc.add(entry);
        }

        private void addFile(TarEntry e, TarHeader h, boolean raw) throws IOException {
            PendingEntry entry = new PendingEntry(h.name, type(h));
            entry.size = h.hasData() ? h.size : 0;
            entry.modTime = h.modTime;
            entry.linkName = h.type == TarHeader.HARDLINK || h.type == TarHeader.SYMLINK ? h.linkName : "";
            entry.mode = h.mode;
            entry.uid = (int) h.uid;
            entry.gid = (int) h.gid;
            entry.userName = firstMention(userNames, h.uid, h.userName);
            entry.groupName = firstMention(groupNames, h.gid, h.groupName);
            entry.devMajor = (int) h.devMajor;
            entry.devMinor = (int) h.devMinor;
            entry.xattrs = h.xattrs;
            toc.add(entry);
            if (!h.hasData()) {
                return;
            }
            if (h.size == 0) {
                entry.digest = Digests.format(Digests.sha256(new byte[0], 0, 0));
                return;
            }
            MessageDigest fileDigest = Digests.sha256();
            PendingEntry chunkEntry = entry;
            for (long off = 0; off < h.size; off += options.chunkSize()) {
                int length = (int) Math.min(options.chunkSize(), h.size - off);
                if (off > 0) {
                    chunkEntry = new PendingEntry(h.name, EntryType.CHUNK);
                    toc.add(chunkEntry);
                }
                startChunk(chunkEntry, false);
                byte[] data = source.read(e.payloadOffset() + off, length);
                fileDigest.update(data);
                chunkEntry.chunkOffset = off;
                chunkEntry.chunkSize = length == options.chunkSize() ? length : 0;
                chunkEntry.chunkDigest = Digests.format(Digests.sha256(data, 0, data.length));
                append(data);
            }
            entry.digest = Digests.format(fileDigest.digest());
        }

        private static String firstMention(Map<Long, String> names, long id, String name) {
            String previous = names.put(id, name);
            return name.equals(previous) ? "" : name;
        }

        /** Decides where a data chunk goes: a new member, or packed into the open one. */
        private void startChunk(PendingEntry entry, boolean forceNewMember) throws IOException {
            boolean pack = !forceNewMember && options.minChunkSize() > 0
                    && members.compressedLengthOfOpenMember() < options.minChunkSize();
            if (!pack) {
                members.closeMember();
            }
            entry.member = members.currentMemberIndex();
            entry.innerOffset = members.openLength();
        }

        void appendRaw(long from, long to) throws IOException {
            for (long pos = from; pos < to; ) {
                int n = (int) Math.min(to - pos, 1 << 20);
                append(source.read(pos, n));
                pos += n;
            }
        }

        private void append(byte[] data) throws IOException {
            diffId.update(data);
            uncompressed += data.length;
            members.append(data);
        }

        ConvertResult finish(MessageDigest blobDigest) throws IOException {
            members.finish();
            List<TocEntry> entries = new ArrayList<>(toc.size());
            for (PendingEntry p : toc) {
                entries.add(p.resolve(members));
            }
            byte[] json = TocJson.write(entries);
            String tocDigest = Digests.format(Digests.sha256(json, 0, json.length));
            byte[] tocHeader = TarHeader.regularFile(EStargzBlob.TOC_NAME, json.length).encode();
            int padding = (int) ((512 - json.length % 512) % 512);
            byte[] tocTar = new byte[512 + json.length + padding + 1024];
            System.arraycopy(tocHeader, 0, tocTar, 0, 512);
            System.arraycopy(json, 0, tocTar, 512, json.length);
            diffId.update(tocTar);
            uncompressed += tocTar.length;
            long tocOffset = members.written();
            byte[] tocMember = MemberWriter.compressToc(tocTar, options.level());
            members.emit(tocMember, 0, tocMember.length, false);
            byte[] footer = Footer.estargz(tocOffset);
            members.emit(footer, 0, footer.length, false);
            return new ConvertResult(Digests.format(blobDigest.digest()), members.written(), tocDigest,
                    Digests.format(diffId.digest()), uncompressed, tocOffset, entries.size());
        }
    }

    private static EntryType type(TarHeader h) {
        return switch (h.type) {
            case TarHeader.DIR -> EntryType.DIR;
            case TarHeader.SYMLINK -> EntryType.SYMLINK;
            case TarHeader.HARDLINK -> EntryType.HARDLINK;
            case TarHeader.CHAR -> EntryType.CHAR;
            case TarHeader.BLOCK -> EntryType.BLOCK;
            case TarHeader.FIFO -> EntryType.FIFO;
            default -> EntryType.REG;
        };
    }

    /** A TOC entry whose offset is known only as (member index, inner offset) until members are written. */
    private static final class PendingEntry {
        final String name;
        final EntryType type;
        long size, modTime, mode, innerOffset, chunkOffset, chunkSize;
        int uid, gid, devMajor, devMinor, member = -1;
        String linkName = "", userName = "", groupName = "", digest = "", chunkDigest = "";
        Map<String, byte[]> xattrs = Map.of();

        PendingEntry(String name, EntryType type) {
            this.name = name;
            this.type = type;
        }

        TocEntry resolve(MemberWriter members) {
            long offset = member < 0 ? 0 : members.memberOffset(member);
            return new TocEntry(name, type, size, modTime, linkName, mode, uid, gid, userName, groupName, offset,
                    innerOffset, devMajor, devMinor, xattrs, digest, chunkOffset, chunkSize, chunkDigest);
        }
    }
}
