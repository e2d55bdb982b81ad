package dev.starling.estargz.write;

import java.io.IOException;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * Writes the blob as a sequence of gzip members. The converter appends uncompressed bytes to the
 * open member and closes it before each data chunk; this class decides how members get compressed.
 */
abstract class MemberWriter implements AutoCloseable {
    private final OutputStream out;
    private final MessageDigest blobDigest;
    private final List<Long> memberOffsets = new ArrayList<>();
    protected final int level;
    private long written;
    /** Uncompressed bytes appended to the open member; 0 when no member is open. */
    protected long openLength;

    MemberWriter(OutputStream out, MessageDigest blobDigest, int level) {
        this.out = out;
        this.blobDigest = blobDigest;
        this.level = level;
    }

    /** Parallel compression of whole members, written in order. */
    static MemberWriter parallel(OutputStream out, MessageDigest blobDigest, int level, int threads) {
        return new Parallel(out, blobDigest, level, threads);
    }

    /** One member at a time, compressed as it is appended, so its compressed size can be measured. */
    static MemberWriter streaming(OutputStream out, MessageDigest blobDigest, int level) {
        return new Streaming(out, blobDigest, level);
    }

    private int membersStarted;

    /** Index of the member the next appended byte lands in. */
    int currentMemberIndex() {
        return openLength == 0 ? membersStarted : membersStarted - 1;
    }

    /** Uncompressed bytes already in the open member: the next byte's inner offset. */
    long openLength() {
        return openLength;
    }

    final void append(byte[] data) throws IOException {
        if (data.length == 0) {
            return;
        }
        if (openLength == 0) {
            membersStarted++;
        }
        openLength += data.length;
        doAppend(data);
    }

    /** Ends the open member, if it holds anything; the next append starts a new one. */
    final void closeMember() throws IOException {
        if (openLength == 0) {
            return;
        }
        openLength = 0;
        doClose();
    }

    /** Compressed bytes the open member holds so far (flushing the compressor); streaming only. */
    long compressedLengthOfOpenMember() throws IOException {
        throw new UnsupportedOperationException("only the streaming writer measures members");
    }

    /** Compressed offset of every member written, by index; complete after {@link #finish()}. */
    long memberOffset(int index) {
        return memberOffsets.get(index);
    }

    long written() {
        return written;
    }

    /** Writes raw bytes (an already compressed member, or the footer). */
    protected final void emit(byte[] b, int off, int len, boolean startsMember) throws IOException {
        if (startsMember) {
            memberOffsets.add(written);
        }
        out.write(b, off, len);
        blobDigest.update(b, off, len);
        written += len;
    }

    /** Waits for every pending member to be written. */
    abstract void finish() throws IOException;

    /** Releases compressor threads and native memory; never throws. */
    @Override
    public abstract void close();

    protected abstract void doAppend(byte[] data) throws IOException;

    protected abstract void doClose() throws IOException;

    static byte[] gzipHeader(int level) {
        int xfl = level == 9 ? 2 : level == 1 ? 4 : 0; // RFC 1952: slowest / fastest compression
        return new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, (byte) xfl, (byte) 0xff};
    }

    static byte[] gzipTrailer(CRC32 crc, long length) {
        long c = crc.getValue();
        return new byte[] {(byte) c, (byte) (c >> 8), (byte) (c >> 16), (byte) (c >> 24),
                (byte) length, (byte) (length >> 8), (byte) (length >> 16), (byte) (length >> 24)};
    }

    /**
     * Members of at most this many uncompressed bytes are compressed twice, with zlib's default
     * strategy and with {@code Z_FILTERED}, and the smaller kept. Go's flate (the reference
     * converter) finds more short matches than zlib's default in text full of hex digests (TOCs,
     * lock files, small configs): measured on 3,000 small-file members, zlib's default came out
     * 2.5 % larger than Go and {@code Z_FILTERED} 0.7 % smaller, while on binaries (a JDK) the
     * default is 7 % smaller. Small members are a layer's small part of its bytes unless the layer
     * is all small files, so the second pass costs little where it does not pay.
     */
    static final int TRY_BOTH_STRATEGIES_UP_TO = 64 * 1024;

    /** Compresses a whole member in one go; safe to run on any thread. The same input always gives the same bytes. */
    static byte[] compressMember(List<byte[]> parts, long length, int level) {
        return length <= TRY_BOTH_STRATEGIES_UP_TO ? smaller(parts, length, level)
                : compressMember(parts, length, level, Deflater.DEFAULT_STRATEGY);
    }

    /** The TOC's member: JSON that is mostly hex digests, compressed both ways whatever its size (once per layer). */
    static byte[] compressToc(byte[] tocTar, int level) {
        return smaller(List.of(tocTar), tocTar.length, level);
    }

    private static byte[] smaller(List<byte[]> parts, long length, int level) {
        byte[] byDefault = compressMember(parts, length, level, Deflater.DEFAULT_STRATEGY);
        byte[] filtered = compressMember(parts, length, level, Deflater.FILTERED);
        return filtered.length < byDefault.length ? filtered : byDefault;
    }

    private static byte[] compressMember(List<byte[]> parts, long length, int level, int strategy) {
        Deflater deflater = new Deflater(level, true);
        deflater.setStrategy(strategy);
        CRC32 crc = new CRC32();
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream((int) Math.min(length / 2 + 64, 1 << 24));
        buf.writeBytes(gzipHeader(level));
        byte[] scratch = new byte[64 * 1024];
        try {
            for (byte[] part : parts) {
                crc.update(part);
                deflater.setInput(part);
                while (!deflater.needsInput()) {
                    int n = deflater.deflate(scratch, 0, scratch.length, Deflater.NO_FLUSH);
                    buf.write(scratch, 0, n);
                }
            }
            deflater.finish();
            while (!deflater.finished()) {
                int n = deflater.deflate(scratch);
                buf.write(scratch, 0, n);
            }
        } finally {
            deflater.end();
        }
        buf.writeBytes(gzipTrailer(crc, length));
        return buf.toByteArray();
    }

    private static final class Parallel extends MemberWriter {
        private final ExecutorService pool;
        private final ArrayDeque<Future<byte[]>> inFlight = new ArrayDeque<>();
        private final int window;
        private List<byte[]> parts = new ArrayList<>();
        private long partsLength;

        Parallel(OutputStream out, MessageDigest blobDigest, int level, int threads) {
            super(out, blobDigest, level);
            this.pool = Executors.newFixedThreadPool(threads, r -> {
                Thread t = new Thread(r, "estargz-compress");
                t.setDaemon(true);
                return t;
            });
            this.window = threads * 3;
        }

        @Override
        protected void doAppend(byte[] data) {
            parts.add(data);
            partsLength += data.length;
        }

        @Override
        protected void doClose() throws IOException {
            List<byte[]> member = parts;
            long length = partsLength;
            parts = new ArrayList<>();
            partsLength = 0;
            inFlight.add(pool.submit(() -> compressMember(member, length, level)));
            while (inFlight.size() > window) {
                writeOldest();
            }
        }

        private void writeOldest() throws IOException {
            try {
                byte[] member = inFlight.removeFirst().get();
                emit(member, 0, member.length, true);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while compressing", e);
            } catch (ExecutionException e) {
                throw new IOException("compression failed: " + e.getCause(), e.getCause());
            }
        }

        @Override
        void finish() throws IOException {
            closeMember();
            while (!inFlight.isEmpty()) {
                writeOldest();
            }
        }

        @Override
        public void close() {
            pool.shutdownNow();
        }
    }

    private static final class Streaming extends MemberWriter {
        private final byte[] scratch = new byte[64 * 1024];
        private Deflater deflater;
        private CRC32 crc;
        private long memberStart;

        Streaming(OutputStream out, MessageDigest blobDigest, int level) {
            super(out, blobDigest, level);
        }

        @Override
        protected void doAppend(byte[] data) throws IOException {
            if (deflater == null) {
                deflater = new Deflater(level, true);
                crc = new CRC32();
                memberStart = written();
                byte[] header = gzipHeader(level);
                emit(header, 0, header.length, true);
            }
            crc.update(data);
            deflater.setInput(data);
            while (!deflater.needsInput()) {
                drain(Deflater.NO_FLUSH);
            }
        }

        private void drain(int flush) throws IOException {
            int n = deflater.deflate(scratch, 0, scratch.length, flush);
            emit(scratch, 0, n, false);
        }

        @Override
        long compressedLengthOfOpenMember() throws IOException {
            if (deflater == null) {
                return 0;
            }
            int n;
            do {
                n = deflater.deflate(scratch, 0, scratch.length, Deflater.SYNC_FLUSH);
                emit(scratch, 0, n, false);
            } while (n == scratch.length);
            return written() - memberStart;
        }

        @Override
        protected void doClose() throws IOException {
            long length = deflater.getBytesRead();
            deflater.finish();
            while (!deflater.finished()) {
                drain(Deflater.NO_FLUSH);
            }
            deflater.end();
            byte[] trailer = gzipTrailer(crc, length);
            emit(trailer, 0, trailer.length, false);
            deflater = null;
        }

        @Override
        void finish() throws IOException {
            closeMember();
        }

        @Override
        public void close() {
            if (deflater != null) {
                deflater.end();
            }
        }
    }
}
