package dev.starling.estargz;

import dev.starling.estargz.tar.TarHeader;
import dev.starling.estargz.tar.TarWriter;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/** Test layers built in memory, and helpers to convert, open and take blobs apart. */
final class Layers {
    private final List<Object[]> entries = new ArrayList<>();
    private String prefix = "";
    private int trailingZeros = 100; // as the reference suite: checks lossless keeps trailing bytes

    static Layers layer() {
        return new Layers();
    }

    Layers prefix(String p) {
        this.prefix = p;
        return this;
    }

    Layers dir(String name) {
        return add(header(name.endsWith("/") ? name : name + "/", TarHeader.DIR, 0755), new byte[0]);
    }

    Layers file(String name, String content) {
        return file(name, content.getBytes(StandardCharsets.UTF_8));
    }

    Layers file(String name, byte[] content) {
        return add(header(name, TarHeader.REG, 0644), content);
    }

    Layers symlink(String name, String target) {
        TarHeader h = header(name, TarHeader.SYMLINK, 0777);
        h.linkName = target;
        return add(h, new byte[0]);
    }

    Layers hardlink(String name, String target) {
        TarHeader h = header(name, TarHeader.HARDLINK, 0644);
        h.linkName = prefix + target;
        return add(h, new byte[0]);
    }

    Layers device(String name, byte type, int major, int minor) {
        TarHeader h = header(name, type, 0644);
        h.devMajor = major;
        h.devMinor = minor;
        return add(h, new byte[0]);
    }

    Layers fifo(String name) {
        return add(header(name, TarHeader.FIFO, 0644), new byte[0]);
    }

    /** Adds an entry with full control of its header (name is used as is, without the prefix). */
    Layers raw(TarHeader h, byte[] content) {
        entries.add(new Object[] {h, content});
        return this;
    }

    Layers with(UnaryOperator<TarHeader> edit) {
        Object[] last = entries.getLast();
        last[0] = edit.apply((TarHeader) last[0]);
        return this;
    }

    private TarHeader header(String name, byte type, int mode) {
        TarHeader h = new TarHeader();
        h.name = prefix + name;
        h.type = type;
        h.mode = mode;
        h.modTime = 1_700_000_000L;
        h.userName = "root";
        h.groupName = "root";
        return h;
    }

    private Layers add(TarHeader h, byte[] content) {
        entries.add(new Object[] {h, content});
        return this;
    }

    byte[] tar() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            TarWriter w = new TarWriter(out);
            for (Object[] e : entries) {
                w.add((TarHeader) e[0], (byte[]) e[1]);
            }
            w.finish();
            out.write(new byte[trailingZeros]);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** A converted blob and what the converter said about it. */
    record Converted(byte[] blob, ConvertResult result) {
        EStargzBlob open() throws IOException {
            return EStargzBlob.open(RangeReader.of(blob), result.tocDigest());
        }
    }

    Converted convert(ConvertOptions options) throws IOException {
        return convert(tar(), options);
    }

    static Converted convert(byte[] tar, ConvertOptions options) throws IOException {
        Path dir = Files.createTempDirectory("starling-test-");
        try {
            Path in = dir.resolve("in.tar");
            Path out = dir.resolve("out.esgz");
            Files.write(in, tar);
            ConvertResult r = Converter.convert(in, out, options);
            return new Converted(Files.readAllBytes(out), r);
        } finally {
            try (var s = Files.list(dir)) {
                for (Path p : s.toList()) {
                    Files.delete(p);
                }
            }
            Files.delete(dir);
        }
    }

    /** Offsets of every gzip member in a blob. */
    static List<Long> members(byte[] blob) throws DataFormatException, InvalidBlobException {
        List<Long> starts = new ArrayList<>();
        int pos = 0;
        byte[] sink = new byte[64 * 1024];
        while (pos < blob.length) {
            starts.add((long) pos);
            byte[] rest = java.util.Arrays.copyOfRange(blob, pos, blob.length);
            int header = GzipHeader.skip(rest);
            Inflater inflater = new Inflater(true);
            inflater.setInput(rest, header, rest.length - header);
            while (!inflater.finished()) {
                if (inflater.inflate(sink) == 0 && inflater.needsInput()) {
                    throw new DataFormatException("truncated member at " + pos);
                }
            }
            pos += header + (rest.length - header - inflater.getRemaining()) + 8;
            inflater.end();
        }
        return starts;
    }

    /** The whole blob decompressed (all members). */
    static byte[] gunzip(byte[] blob) throws IOException {
        try (var in = new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(blob))) {
            return in.readAllBytes();
        }
    }

    /** Replaces the blob's TOC (keeping its payload), returning the new blob and TOC digest. */
    static Converted rewriteToc(Converted c, UnaryOperator<List<TocEntry>> edit) throws IOException {
        EStargzBlob.RawToc raw = EStargzBlob.readToc(RangeReader.of(c.blob()), ReaderLimits.DEFAULT);
        byte[] json = TocJson.write(edit.apply(new ArrayList<>(raw.entries())));
        return withTocJson(c, json);
    }

    static Converted withTocJson(Converted c, byte[] json) throws IOException {
        long tocOffset = c.result().tocOffset();
        ByteArrayOutputStream tocTar = new ByteArrayOutputStream();
        tocTar.write(TarHeader.regularFile(EStargzBlob.TOC_NAME, json.length).encode());
        tocTar.write(json);
        tocTar.write(new byte[(512 - json.length % 512) % 512 + 1024]);
        ByteArrayOutputStream blob = new ByteArrayOutputStream();
        blob.write(c.blob(), 0, (int) tocOffset);
        try (var gz = new java.util.zip.GZIPOutputStream(blob)) {
            gz.write(tocTar.toByteArray());
        }
        blob.write(Footer.estargz(tocOffset));
        String digest = Digests.format(Digests.sha256(json, 0, json.length));
        var r = c.result();
        return new Converted(blob.toByteArray(), new ConvertResult(r.blobDigest(), blob.size(), digest, r.diffId(),
                r.uncompressedSize(), tocOffset, r.entries()));
    }

    static TocEntry withField(TocEntry e, Map<String, Object> changes) {
        return new TocEntry(
                (String) changes.getOrDefault("name", e.name()), e.type(), e.size(), e.modTime(),
                (String) changes.getOrDefault("linkName", e.linkName()), e.mode(), e.uid(), e.gid(), e.userName(),
                e.groupName(), (long) changes.getOrDefault("offset", e.offset()), e.innerOffset(), e.devMajor(),
                e.devMinor(), e.xattrs(), e.digest(), e.chunkOffset(),
                (long) changes.getOrDefault("chunkSize", e.chunkSize()),
                (String) changes.getOrDefault("chunkDigest", e.chunkDigest()));
    }

    static byte[] random(int seed, int n) {
        byte[] b = new byte[n];
        new java.util.Random(seed).nextBytes(b);
        return b;
    }
}
