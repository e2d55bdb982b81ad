package dev.starling.fetch;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.VerificationException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;

/**
 * The memory tier: verified chunks kept by their digest (content-addressed, so a chunk shared by two
 * layers is held once), bounded in bytes, in front of a slower {@link ChunkSource}. Concurrent
 * reads of one missing chunk share one load. FUSE reads arrive in 128 KiB-1 MiB pieces of 4 MiB
 * chunks; without this tier each piece would fetch its whole chunk again.
 */
public final class MemoryChunkCache {
    private final Cache<ByteBuffer, byte[]> chunks;

    public MemoryChunkCache(long maxBytes) {
        this.chunks = Caffeine.newBuilder()
                .maximumWeight(maxBytes)
                .weigher((ByteBuffer key, byte[] value) -> value.length + 64)
                .build();
    }

    /** This tier in front of {@code origin}: shared by every layer, chunks keyed by digest. */
    public ChunkSource over(ChunkSource origin) {
        return chunk -> read(chunk, origin);
    }

    public byte[] read(Chunk chunk, ChunkSource origin) throws IOException {
        if (chunk.digest() == null) {
            throw new VerificationException(chunk.describe() + " has no digest in the TOC, so it cannot be verified");
        }
        try {
            return chunks.get(ByteBuffer.wrap(chunk.digest()), key -> {
                try {
                    return origin.read(chunk);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause(); // not cached: the next read tries again
        }
    }
}
