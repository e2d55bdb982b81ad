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

    /**
     * Decodes {@code chunk} reading its compressed span from {@code reader} piece by piece, the first
     * {@code firstWindow} bytes, then doubling, and stops as soon as the chunk's bytes are out. For a
     * span far larger than the chunk needs (a hostile TOC can point a one-byte file at a member that
     * runs to the TOC): the bytes held stay near what the chunk needs, not the span.
     */
    public byte[] decode(Chunk chunk, RangeReader reader, int firstWindow) throws IOException {
        Windows windows = new Windows(reader, chunk.compressedOffset(), chunk.compressedEnd(), firstWindow);
        byte[] out;
        try {
            out = zstd ? zstdSlice(windows.stream(), chunk.innerOffset(), (int) chunk.size())
                    : gzipSlice(windows, chunk.innerOffset(), (int) chunk.size());
        } catch (InvalidBlobException e) {
            throw new InvalidBlobException(chunk.describe() + ": " + e.getMessage(), e);
        }
        verify(chunk, out);
        return out;
    }

    /** Successive pieces of [start, end) of a blob, each twice the size of the one before (capped at 8 MiB). */
    private static final class Windows {
        private static final int MAX_WINDOW = 8 << 20;
        private final RangeReader reader;
        private final long end;
        private long pos;
        private int next;

        Windows(RangeReader reader, long start, long end, int first) {
            this.reader = reader;
            this.pos = start;
            this.end = end;
            this.next = Math.max(1, first);
        }

        boolean hasMore() {
            return pos < end;
        }

        byte[] next() throws IOException {
            int n = (int) Math.min(next, end - pos);
            byte[] b = reader.read(pos, n);
            pos += n;
            next = (int) Math.min(MAX_WINDOW, next * 2L);
            return b;
        }

        InputStream stream() {
            return new InputStream() {
                private byte[] buf = new byte[0];
                private int at;

                @Override
                public int read() throws IOException {
                    byte[] one = new byte[1];
                    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    while (at == buf.length) {
                        if (!hasMore()) {
                            return -1;
                        }
                        try {
                            buf = next();
                        } catch (IOException e) {
                            throw new SourceFailure(e); // not the frame's fault: let the caller tell them apart
                        }
                        at = 0;
                    }
                    int n = Math.min(len, buf.length - at);
                    System.arraycopy(buf, at, b, off, n);
                    at += n;
                    return n;
                }
            };
        }
    }

    /** A read of the span failed (the registry, a peer): passed on as it is, not as a corrupt frame. */
    private static final class SourceFailure extends IOException {
        SourceFailure(IOException cause) {
            super(cause);
        }
    }

    /** Inflates one gzip member from the start of {@code member}, returning bytes [skip, skip + length). */
    static byte[] gzipSlice(byte[] member, long skip, int length) throws InvalidBlobException {
        try {
            return gzipSlice(new Windows(RangeReader.of(member), 0, member.length, member.length), skip, length);
        } catch (InvalidBlobException e) {
            throw e;
        } catch (IOException e) {
            throw new IllegalStateException("an in-memory read cannot fail", e);
        }
    }

    private static byte[] gzipSlice(Windows windows, long skip, int length) throws IOException {
        byte[] first = windows.hasMore() ? windows.next() : new byte[0];
        int pos;
        while (true) {
            try {
                pos = GzipHeader.skip(first);
                break;
            } catch (InvalidBlobException truncated) {
                if (first.length < 10 || !windows.hasMore()) {
                    throw truncated;
                }
                byte[] more = windows.next(); // a header with a long name or extra field
                byte[] joined = java.util.Arrays.copyOf(first, first.length + more.length);
                System.arraycopy(more, 0, joined, first.length, more.length);
                first = joined;
            }
        }
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(first, pos, first.length - pos);
            byte[] scratch = skip > 0 ? new byte[(int) Math.min(skip, 64 * 1024)] : null;
            long toSkip = skip;
            while (toSkip > 0) {
                int n = inflater.inflate(scratch, 0, (int) Math.min(toSkip, scratch.length));
                if (n == 0 && !refill(inflater, windows)) {
                    throw new InvalidBlobException("member ends " + toSkip + " bytes before the chunk starts");
                }
                toSkip -= n;
            }
            byte[] out = new byte[length];
            int filled = 0;
            while (filled < length) {
                int n = inflater.inflate(out, filled, length - filled);
                if (n == 0 && !refill(inflater, windows)) {
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

    /** Gives a stalled inflater the next window; false when it cannot go on (the member or the span ended). */
    private static boolean refill(Inflater inflater, Windows windows) throws IOException {
        if (inflater.finished() || inflater.needsDictionary()) {
            return false;
        }
        if (inflater.needsInput()) {
            if (!windows.hasMore()) {
                return false;
            }
            inflater.setInput(windows.next());
        }
        return true;
    }

    static byte[] zstdSlice(byte[] frame, long skip, int length) throws InvalidBlobException {
        try {
            return zstdSlice(new ByteArrayInputStream(frame), skip, length);
        } catch (InvalidBlobException e) {
            throw e;
        } catch (IOException e) {
            throw new IllegalStateException("an in-memory read cannot fail", e);
        }
    }

    private static byte[] zstdSlice(InputStream compressed, long skip, int length) throws IOException {
        try (InputStream in = new ZstdInputStream(compressed)) {
            long skipped = skipFully(in, skip);
            byte[] out = in.readNBytes(length);
            if (skipped != skip || out.length != length) {
                throw new InvalidBlobException("zstd frame ends before the chunk's " + length + " bytes");
            }
            return out;
        } catch (InvalidBlobException e) {
            throw e;
        } catch (SourceFailure e) {
            throw (IOException) e.getCause();
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
