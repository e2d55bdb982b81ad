package dev.starling.fetch;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.starling.estargz.Chunk;
import java.nio.ByteBuffer;

/**
 * The memory tier: verified chunks kept by their digest (content-addressed, so a chunk shared by two
 * layers is held once), bounded in bytes. FUSE reads arrive in 128 KiB-1 MiB pieces of chunks of up
 * to 4 MiB; without this tier each piece would decompress (or fetch) its whole chunk again.
 */
public final class MemoryChunkCache {
    private final Cache<ByteBuffer, byte[]> chunks;

    public MemoryChunkCache(long maxBytes) {
        this.chunks = Caffeine.newBuilder()
                .maximumWeight(maxBytes)
                .weigher((ByteBuffer key, byte[] value) -> value.length + 64)
                .build();
    }

    /** The chunk's bytes, or null. Chunks without a digest are never stored, so never found. */
    public byte[] get(Chunk chunk) {
        return chunk.digest() == null ? null : chunks.getIfPresent(ByteBuffer.wrap(chunk.digest()));
    }

    /** Stores bytes already verified against the chunk's digest. */
    public void put(Chunk chunk, byte[] data) {
        if (chunk.digest() != null) {
            chunks.put(ByteBuffer.wrap(chunk.digest()), data);
        }
    }
}
