package dev.starling.estargz;

import com.github.luben.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Turns the compressed bytes of one member into one verified chunk: decompress, skip
 * {@code innerOffset}, take exactly {@code size} bytes, check sha256 against the TOC.
 */
public final class ChunkDecoder {
    private final boolean zstd;

    public ChunkDecoder(Footer.Format format) {
        this.zstd = format == Footer.Format.ZSTD_CHUNKED;
    }

    /**
     * Decodes {@code chunk} from {@code compressed}, which holds the blob's bytes from
     * {@code chunk.compressedOffset()} on (at least up to where the chunk's data ends).
     *
     * @throws VerificationException when the bytes do not hash to the chunk's digest, or it has none
     * @throws InvalidBlobException  when the member is corrupt or too short
     */
    public byte[] decode(Chunk chunk, byte[] compressed) throws InvalidBlobException {
        byte[] out = decompress(chunk, compressed);
        verify(chunk, out);
        return out;
    }

    /** Decompresses without verifying: for tools that report mismatches themselves. */
    public byte[] decompress(Chunk chunk, byte[] compressed) throws InvalidBlobException {
        try {
            return zstd ? zstdSlice(compressed, chunk.innerOffset(), (int) chunk.size())
                    : gzipSlice(compressed, chunk.innerOffset(), (int) chunk.size());
        } catch (InvalidBlobException e) {
            throw new InvalidBlobException(chunk.describe() + ": " + e.getMessage(), e);
        }
    }

    public static void verify(Chunk chunk, byte[] data) throws VerificationException {
        if (chunk.digest() == null) {
            throw new VerificationException(chunk.describe() + " has no digest in the TOC, so it cannot be verified");
        }
        byte[] actual = Digests.sha256(data, 0, data.length);
        if (!MessageDigest.isEqual(actual, chunk.digest())) {
            throw new VerificationException(chunk.describe() + ": content is " + Digests.format(actual)
                    + " but the TOC says " + Digests.format(chunk.digest()));
        }
    }

    /** Inflates one gzip member from the start of {@code member}, returning bytes [skip, skip + length). */
    static byte[] gzipSlice(byte[] member, long skip, int length) throws InvalidBlobException {
        int pos = GzipHeader.skip(member);
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(member, pos, member.length - pos);
            byte[] scratch = skip > 0 ? new byte[(int) Math.min(skip, 64 * 1024)] : null;
            long toSkip = skip;
            while (toSkip > 0) {
                int n = inflater.inflate(scratch, 0, (int) Math.min(toSkip, scratch.length));
                if (n == 0 && stalled(inflater)) {
                    throw new InvalidBlobException("member ends " + toSkip + " bytes before the chunk starts");
                }
                toSkip -= n;
            }
            byte[] out = new byte[length];
            int filled = 0;
            while (filled < length) {
                int n = inflater.inflate(out, filled, length - filled);
                if (n == 0 && stalled(inflater)) {
                    throw new InvalidBlobException("member ends after " + filled + " of the chunk's " + length
                            + " bytes");
                }
                filled += n;
            }
            return out;
        } catch (DataFormatException e) {
            throw new InvalidBlobException("corrupt deflate data: " + e.getMessage(), e);
        } finally {
            inflater.end();
        }
    }

    private static boolean stalled(Inflater inflater) {
        return inflater.finished() || inflater.needsInput() || inflater.needsDictionary();
    }

    static byte[] zstdSlice(byte[] frame, long skip, int length) throws InvalidBlobException {
        try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(frame))) {
            long skipped = skipFully(in, skip);
            byte[] out = in.readNBytes(length);
            if (skipped != skip || out.length != length) {
                throw new InvalidBlobException("zstd frame ends before the chunk's " + length + " bytes");
            }
            return out;
        } catch (InvalidBlobException e) {
            throw e;
        } catch (IOException e) {
            throw new InvalidBlobException("corrupt zstd frame: " + e.getMessage(), e);
        }
    }

    private static long skipFully(InputStream in, long n) throws IOException {
        long done = 0;
        byte[] scratch = new byte[(int) Math.min(Math.max(n, 1), 64 * 1024)];
        while (done < n) {
            int r = in.read(scratch, 0, (int) Math.min(scratch.length, n - done));
            if (r < 0) {
                break;
            }
            done += r;
        }
        return done;
    }
}
