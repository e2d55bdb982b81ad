package dev.starling.estargz;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.Semaphore;

/**
 * Where the verified bytes of a chunk come from: the blob itself, a cache, a peer, the registry.
 * The FUSE layer reads through this; the daemon decides what stands behind it.
 */
@FunctionalInterface
public interface ChunkSource {
    /** Exactly {@code chunk.size()} bytes, verified against the chunk's digest. */
    byte[] read(Chunk chunk) throws IOException;

    /**
     * Copies {@code length} bytes of the chunk, from {@code offset} in it, into {@code into} (moving
     * its position on): the one call a file system makes per chunk of a read. The source decides
     * where the bytes come from; when it must wait on the network it first takes one of
     * {@code networkSlots}, and fails at once without one, so reads of what is at hand (and
     * metadata) never queue behind a wedged registry. A source that cannot tell what is at hand
     * treats every read as a network read.
     */
    default void read(Chunk chunk, int offset, int length, ByteBuffer into, Semaphore networkSlots) throws IOException {
        if (!networkSlots.tryAcquire()) {
            throw new NoNetworkSlotException();
        }
        try {
            into.put(read(chunk), offset, length);
        } finally {
            networkSlots.release();
        }
    }

    /**
     * A hint that {@code upcoming} will be read soon (a reader going through a file in order): a
     * source that can fetch them in the background, in parallel, should start now. Never blocks.
     */
    default void readAhead(List<Chunk> upcoming) {
    }

    /** Every network slot was taken: the read fails now rather than wait behind the others. */
    final class NoNetworkSlotException extends IOException {
        public NoNetworkSlotException() {
            super("every read slot for the network is taken (is the registry wedged?); failing this read so metadata and "
                    + "cached reads stay answered");
        }
    }
}
