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
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

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

    /** The TOC as stored: its footer, its exact JSON bytes and their digest. */
    public record RawToc(Footer footer, byte[] json, String digest) {
        public List<TocEntry> entries() throws InvalidBlobException {
            return TocJson.parse(json);
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

    /** Finds, fetches and decompresses the TOC (compat doc section 1.4), and hashes its JSON. */
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
        byte[] json = footer.format() == Footer.Format.ZSTD_CHUNKED
                ? zstdToc(compressed, footer, limits)
                : gzipToc(compressed, limits);
        return new RawToc(footer, json, Digests.format(Digests.sha256(json, 0, json.length)));
    }

    private static byte[] gzipToc(byte[] member, ReaderLimits limits) throws InvalidBlobException {
        byte[] tar = inflateMember(member, limits.maxTocBytes() + 1024);
        if (tar.length < 512) {
            throw new InvalidBlobException("TOC member holds " + tar.length + " bytes, less than a tar header");
        }
        String name = TarHeader.string(tar, 0, 100);
        if (!name.equals(TOC_NAME)) {
            throw new InvalidBlobException("TOC member starts with " + Digests.quote(name) + ", not " + TOC_NAME);
        }
        long size = TarHeader.number(tar, 124, 12);
        if (size < 0 || 512 + size > tar.length) {
            throw new InvalidBlobException("TOC tar entry claims " + size + " bytes but the member holds "
                    + (tar.length - 512));
        }
        return Arrays.copyOfRange(tar, 512, 512 + (int) size);
    }

    private static byte[] inflateMember(byte[] member, long maxOutput) throws InvalidBlobException {
        int pos = GzipHeader.skip(member);
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(member, pos, member.length - pos);
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(Math.max(4096, member.length * 4));
            byte[] buf = new byte[64 * 1024];
            while (!inflater.finished()) {
                int n = inflater.inflate(buf);
                if (n == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
                    throw new InvalidBlobException("TOC member is truncated");
                }
                out.write(buf, 0, n);
                if (out.size() > maxOutput) {
                    throw new InvalidBlobException("TOC decompresses to more than " + maxOutput + " bytes");
                }
            }
            return out.toByteArray();
        } catch (DataFormatException e) {
            throw new InvalidBlobException("TOC member is not valid deflate data: " + e.getMessage(), e);
        } finally {
            inflater.end();
        }
    }

    private static byte[] zstdToc(byte[] frame, Footer footer, ReaderLimits limits) throws InvalidBlobException {
        long raw = footer.tocUncompressedSize();
        if (raw > limits.maxTocBytes()) {
            throw new InvalidBlobException("TOC is " + raw + " bytes uncompressed, over the "
                    + limits.maxTocBytes() + "-byte limit");
        }
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(frame))) {
            byte[] json = in.readNBytes((int) raw);
            if (json.length != raw) {
                throw new InvalidBlobException("TOC frame holds " + json.length + " bytes, the footer says " + raw);
            }
            return json;
        } catch (InvalidBlobException e) {
            throw e;
        } catch (IOException e) {
            throw new InvalidBlobException("TOC frame is not valid zstd: " + e.getMessage(), e);
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
