package dev.starling.estargz;

import com.github.luben.zstd.ZstdInputStream;
import dev.starling.estargz.tar.TarHeader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.List;
import java.util.zip.Inflater;
import java.util.zip.InflaterInputStream;
import java.util.zip.ZipException;

/**
 * An opened eStargz (or stargz, or zstd:chunked) blob: footer decoded, TOC fetched, hashed,
 * optionally checked against the manifest's {@code toc.digest}, parsed and indexed. Reads file
 * bytes chunk by chunk through the {@link RangeReader}, verifying every chunk.
 */
public final class EStargzBlob {
    public static final String TOC_NAME = "stargz.index.json";
    /** Bytes read from the end at open: footer plus, for most layers, the whole TOC in one request. */
    static final int TAIL_WINDOW = 64 * 1024;

    private final RangeReader reader;
    private final Footer footer;
    private final String tocDigest;
    private final TocIndex index;
    private final ChunkDecoder decoder;

    private EStargzBlob(RangeReader reader, Footer footer, String tocDigest, TocIndex index) {
        this.reader = reader;
        this.footer = footer;
        this.tocDigest = tocDigest;
        this.index = index;
        this.decoder = new ChunkDecoder(footer.format());
    }

    /**
     * The TOC as stored: its footer, its compressed member and the digest of the JSON inside. The
     * JSON is never held whole: a small member can inflate to hundreds of MB, so it is hashed as it
     * inflates, and parsed (bounded by {@link ReaderLimits}) as it inflates again, after the digest
     * was checked against the manifest.
     */
    public record RawToc(Footer footer, byte[] compressed, String digest, ReaderLimits limits) {
        public List<TocEntry> entries() throws InvalidBlobException {
            try (InputStream json = jsonStream(footer, compressed, limits)) {
                return TocJson.parse(json, limits);
            } catch (InvalidBlobException e) {
                throw e;
            } catch (IOException e) {
                throw new InvalidBlobException("cannot read the TOC: " + e.getMessage(), e);
            }
        }
    }

    /** Opens a blob, trusting nothing; {@code expectedTocDigest} may be null (no manifest to check). */
    public static EStargzBlob open(RangeReader reader, String expectedTocDigest) throws IOException {
        return open(reader, expectedTocDigest, ReaderLimits.DEFAULT);
    }

    public static EStargzBlob open(RangeReader reader, String expectedTocDigest, ReaderLimits limits)
            throws IOException {
        return open(reader, readToc(reader, limits), expectedTocDigest, limits);
    }

    /** Opens a blob whose TOC was already read with {@link #readToc} (as {@code inspect} does to list it). */
    public static EStargzBlob open(RangeReader reader, RawToc raw, String expectedTocDigest, ReaderLimits limits)
            throws IOException {
        if (expectedTocDigest != null) {
            byte[] expected = Digests.parse(expectedTocDigest);
            if (!MessageDigest.isEqual(expected, Digests.parse(raw.digest()))) {
                throw new VerificationException("TOC digest is " + raw.digest() + " but " + expectedTocDigest
                        + " was expected");
            }
        }
        TocIndex index = TocIndex.build(raw.entries(), raw.footer().payloadEnd(), limits);
        return new EStargzBlob(reader, raw.footer(), raw.digest(), index);
    }

    /** Finds and fetches the TOC (compat doc section 1.4), and hashes its JSON as it decompresses. */
    public static RawToc readToc(RangeReader reader, ReaderLimits limits) throws IOException {
        long size = reader.size();
        int window = (int) Math.min(size, TAIL_WINDOW);
        long windowStart = size - window;
        byte[] tail = reader.read(windowStart, window);
        Footer footer = Footer.decode(tail, size);
        if (footer.tocCompressedSize() > limits.maxTocBytes()) {
            throw new InvalidBlobException("TOC is " + footer.tocCompressedSize() + " compressed bytes, over the "
                    + limits.maxTocBytes() + "-byte limit");
        }
        int tocLength = (int) footer.tocCompressedSize();
        byte[] compressed = footer.tocOffset() >= windowStart
                ? Arrays.copyOfRange(tail, (int) (footer.tocOffset() - windowStart),
                        (int) (footer.tocOffset() - windowStart) + tocLength)
                : reader.read(footer.tocOffset(), tocLength);
        MessageDigest sha = Digests.sha256();
        try (InputStream json = jsonStream(footer, compressed, limits)) {
            byte[] buf = new byte[64 * 1024];
            for (int n; (n = json.read(buf)) > 0; ) {
                sha.update(buf, 0, n);
            }
        }
        return new RawToc(footer, compressed, Digests.format(sha.digest()), limits);
    }

    /** The TOC's JSON bytes, inflated as they are read, never more than the footer or tar header says. */
    private static InputStream jsonStream(Footer footer, byte[] compressed, ReaderLimits limits) throws IOException {
        if (footer.format() == Footer.Format.ZSTD_CHUNKED) {
            long raw = footer.tocUncompressedSize();
            if (raw > limits.maxTocBytes()) {
                throw new InvalidBlobException("TOC is " + raw + " bytes uncompressed, over the "
                        + limits.maxTocBytes() + "-byte limit");
            }
            InputStream in;
            try {
                in = new ZstdInputStream(new ByteArrayInputStream(compressed));
            } catch (IOException e) {
                throw new InvalidBlobException("TOC frame is not valid zstd: " + e.getMessage(), e);
            }
            return new ExactStream(in, raw, "TOC frame", "zstd");
        }
        int pos = GzipHeader.skip(compressed);
        InputStream tar = new InflaterInputStream(new ByteArrayInputStream(compressed, pos, compressed.length - pos),
                new Inflater(true), 64 * 1024) {
            @Override
            public void close() throws IOException {
                super.close();
                inf.end(); // an inflater passed in is not ended by close()
            }
        };
        byte[] header;
        try {
            header = tar.readNBytes(512);
        } catch (ZipException e) {
            throw new InvalidBlobException("TOC member is not valid deflate data: " + e.getMessage(), e);
        }
        if (header.length < 512) {
            throw new InvalidBlobException("TOC member holds " + header.length + " bytes, less than a tar header");
        }
        String name = TarHeader.string(header, 0, 100);
        if (!name.equals(TOC_NAME)) {
            throw new InvalidBlobException("TOC member starts with " + Digests.quote(name) + ", not " + TOC_NAME);
        }
        long jsonSize = TarHeader.number(header, 124, 12);
        if (jsonSize < 0 || jsonSize > limits.maxTocBytes()) {
            throw new InvalidBlobException("TOC tar entry claims " + jsonSize + " bytes"
                    + (jsonSize < 0 ? "" : ", more than the " + limits.maxTocBytes() + "-byte limit"));
        }
        return new ExactStream(tar, jsonSize, "TOC member", "deflate");
    }

    /** Exactly {@code length} bytes of {@code in}; a shorter or corrupt stream is an {@link InvalidBlobException}. */
    private static final class ExactStream extends java.io.FilterInputStream {
        private long left;
        private final String what;
        private final String codec;

        ExactStream(InputStream in, long length, String what, String codec) {
            super(in);
            this.left = length;
            this.what = what;
            this.codec = codec;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (left == 0) {
                return -1;
            }
            int n;
            try {
                n = in.read(b, off, (int) Math.min(len, left));
            } catch (InvalidBlobException e) {
                throw e;
            } catch (IOException e) {
                throw new InvalidBlobException(what + " is not valid " + codec + " data: " + e.getMessage(), e);
            }
            if (n < 0) {
                throw new InvalidBlobException(what + " is truncated: " + left + " bytes of the TOC are missing");
            }
            left -= n;
            return n;
        }
    }

    public Footer footer() {
        return footer;
    }

    /** sha256 of the TOC JSON: the value of the {@code containerd.io/snapshot/stargz/toc.digest} annotation. */
    public String tocDigest() {
        return tocDigest;
    }

    public TocIndex index() {
        return index;
    }

    /** Fetches, decompresses and verifies one chunk. */
    public byte[] readChunk(Chunk chunk) throws IOException {
        return decoder.decode(chunk, reader.read(chunk.compressedOffset(), (int) chunk.compressedLength()));
    }

    /** Reads up to {@code length} bytes of {@code file} at {@code offset}; fewer only at end of file. */
    public byte[] read(TocNode file, long offset, int length) throws IOException {
        if (file.type() != EntryType.REG) {
            throw new IllegalArgumentException(file + " is not a regular file");
        }
        long end = Math.min(file.size(), offset + length);
        if (offset >= end) {
            return new byte[0];
        }
        byte[] out = new byte[(int) (end - offset)];
        long pos = offset;
        while (pos < end) {
            Chunk chunk = index.chunk(file, index.chunkIndexAt(file, pos));
            byte[] data = readChunk(chunk);
            int from = (int) (pos - chunk.fileOffset());
            int n = (int) Math.min(data.length - from, end - pos);
            System.arraycopy(data, from, out, (int) (pos - offset), n);
            pos += n;
        }
        return out;
    }

    @Override
    public String toString() {
        return "eStargz blob (" + footer.format() + ", TOC " + tocDigest + ", " + index.nodeCount() + " nodes)";
    }

}
