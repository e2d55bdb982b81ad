package dev.starling.layers;

import dev.starling.estargz.RangeReader;
import dev.starling.registry.Digest;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * The bytes a layer was opened from (its footer and compressed TOC) and its blob's size, kept on
 * disk per blob, so the node can open the layer again without the registry: after a restart, with
 * the registry down, a layer whose chunks the disk tier holds reads as before. Nothing here is
 * trusted: the TOC read back is verified against the manifest's digest as on the first open, and
 * an entry that fails is dropped and fetched again.
 */
public final class TocCache {
    private static final Logger LOG = Logger.getLogger(TocCache.class.getName());
    private static final int MAGIC = 0x53544f43; // "STOC"
    /** More than any footer and TOC the reader accepts; a bigger entry is refused as corrupt. */
    private static final long MAX_ENTRY_BYTES = 512L << 20;
    private final Path dir;

    public TocCache(Path dir) throws IOException {
        this.dir = dev.starling.fetch.OwnerOnly.directories(dir);
    }

    /** One read of the blob, as the open made it. */
    record Range(long offset, byte[] bytes) {
    }

    /** What was kept for a blob: its size and the ranges the open read. */
    record Entry(long blobSize, List<Range> ranges) {
        /** {@code remote}, answering the kept ranges (and any read inside one) from here. */
        RangeReader over(RangeReader remote) {
            return new RangeReader() {
                @Override
                public long size() {
                    return blobSize;
                }

                @Override
                public byte[] read(long offset, int length) throws IOException {
                    for (Range r : ranges) {
                        if (offset >= r.offset() && offset + length <= r.offset() + r.bytes().length) {
                            byte[] out = new byte[length];
                            System.arraycopy(r.bytes(), (int) (offset - r.offset()), out, 0, length);
                            return out;
                        }
                    }
                    return remote.read(offset, length);
                }
            };
        }
    }

    private Path file(Digest blob) {
        return dir.resolve(blob.hex());
    }

    /** The entry for {@code blob}, or null when there is none or it cannot be read. */
    Entry get(Digest blob) {
        Path f = file(blob);
        if (!Files.exists(f)) {
            return null;
        }
        try (DataInputStream in = new DataInputStream(Files.newInputStream(f))) {
            if (in.readInt() != MAGIC) {
                throw new IOException("not a TOC cache entry");
            }
            long size = in.readLong();
            int count = in.readInt();
            List<Range> ranges = new ArrayList<>();
            long total = 0;
            for (int i = 0; i < count; i++) {
                long offset = in.readLong();
                int length = in.readInt();
                total += length;
                if (count > 16 || length < 0 || total > MAX_ENTRY_BYTES) {
                    throw new IOException("implausible entry");
                }
                ranges.add(new Range(offset, in.readNBytes(length)));
            }
            return new Entry(size, ranges);
        } catch (IOException | RuntimeException e) {
            LOG.warning("dropping the kept TOC of " + blob + " (" + e.getMessage() + "); it is fetched again");
            drop(blob);
            return null;
        }
    }

    /** Keeps what opening {@code blob} read; written whole or not at all. */
    void put(Digest blob, long blobSize, List<Range> ranges) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeInt(MAGIC);
                out.writeLong(blobSize);
                out.writeInt(ranges.size());
                for (Range r : ranges) {
                    out.writeLong(r.offset());
                    out.writeInt(r.bytes().length);
                    out.write(r.bytes());
                }
            }
            Path tmp = dir.resolve(blob.hex() + ".tmp");
            dev.starling.fetch.OwnerOnly.write(tmp, bytes.toByteArray());
            Files.move(tmp, file(blob), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            LOG.warning("cannot keep the TOC of " + blob + " (" + e.getMessage() + "); the next open fetches it again");
        }
    }

    void drop(Digest blob) {
        try {
            Files.deleteIfExists(file(blob));
        } catch (IOException e) {
            LOG.warning("cannot drop the kept TOC of " + blob + ": " + e.getMessage());
        }
    }

    /** A reader that notes every read it passes on, for {@link #put}. */
    static final class Recording implements RangeReader {
        private final RangeReader inner;
        private final List<Range> reads = new ArrayList<>();

        Recording(RangeReader inner) {
            this.inner = inner;
        }

        @Override
        public long size() throws IOException {
            return inner.size();
        }

        @Override
        public synchronized byte[] read(long offset, int length) throws IOException {
            byte[] data = inner.read(offset, length);
            reads.add(new Range(offset, data));
            return data;
        }

        synchronized List<Range> reads() {
            return List.copyOf(reads);
        }
    }
}
