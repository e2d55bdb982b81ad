package dev.starling.estargz;

import java.io.IOException;

/**
 * Where the verified bytes of a chunk come from: the blob itself, a cache, a peer, the registry.
 * The FUSE layer reads through this; the daemon decides what stands behind it.
 */
@FunctionalInterface
public interface ChunkSource {
    /** Exactly {@code chunk.size()} bytes, verified against the chunk's digest. */
    byte[] read(Chunk chunk) throws IOException;
}
