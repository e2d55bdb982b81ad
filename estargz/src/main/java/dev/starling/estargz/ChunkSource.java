package dev.starling.estargz;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Where the verified bytes of a chunk come from: the blob itself, a cache, a peer, the registry.
 * The FUSE layer reads through this; the daemon decides what stands behind it.
 */
@FunctionalInterface
public interface ChunkSource {
    /** Exactly {@code chunk.size()} bytes, verified against the chunk's digest. */
    byte[] read(Chunk chunk) throws IOException;

    /**
     * {@link #read(Chunk)} for a caller that will use only {@code bytesUsed} of the chunk's bytes (a
     * FUSE read of 128 KiB from a 4 MiB chunk), so a source that counts bytes served counts those.
     */
    default byte[] read(Chunk chunk, long bytesUsed) throws IOException {
        return read(chunk);
    }

    /**
     * The chunk's bytes when this node has them at hand (memory, local disk), or null when they must
     * come over the network: a caller with few threads can then refuse to let slow remote reads take
     * them all. A source that cannot tell returns null.
     */
    default byte[] readIfLocal(Chunk chunk, long bytesUsed) throws IOException {
        return null;
    }

    /**
     * Copies {@code length} bytes of the chunk, from {@code offset} in it, into {@code into} (and
     * moves its position on) when this node has them at hand; false when they must come over the
     * network. A source that keeps chunks as files can copy straight from the file, without the
     * whole chunk on the heap.
     */
    default boolean copyIfLocal(Chunk chunk, int offset, int length, ByteBuffer into) throws IOException {
        byte[] data = readIfLocal(chunk, length);
        if (data == null) {
            return false;
        }
        into.put(data, offset, length);
        return true;
    }

    /**
     * A hint that {@code upcoming} will be read soon (a reader going through a file in order): a
     * source that can fetch them in the background, in parallel, should start now. Never blocks.
     */
    default void readAhead(List<Chunk> upcoming) {
    }
}
