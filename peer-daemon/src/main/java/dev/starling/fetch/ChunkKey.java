package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.Digests;
import dev.starling.estargz.VerificationException;
import dev.starling.registry.Digest;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * What the node's tiers store a chunk under: the layer blob that holds it and the sha256 of its
 * bytes. The blob is part of the key on purpose. A TOC may name any chunk digest it likes, so a
 * tier keyed by chunk digest alone would hand one image's cached bytes (another tenant's private
 * file) to any image whose TOC names that digest. With the blob in the key a chunk serves only the
 * layer whose own blob holds it; images sharing a layer share its blob, so they still share chunks.
 */
public final class ChunkKey {
    private static final HexFormat HEX = HexFormat.of();

    private final Digest blob;
    private final byte[] chunk;
    private final int hash;

    ChunkKey(Digest blob, byte[] chunk) {
        this.blob = blob;
        this.chunk = chunk;
        this.hash = 31 * blob.hashCode() + Arrays.hashCode(chunk);
    }

    /** The key of {@code chunk} of the layer {@code blob}; a chunk without a digest has none (it cannot be verified). */
    public static ChunkKey of(Digest blob, Chunk chunk) throws VerificationException {
        if (chunk.digest() == null) {
            throw new VerificationException(chunk.describe() + " has no digest in the TOC, so it cannot be verified");
        }
        return new ChunkKey(blob, chunk.digest());
    }

    /** A key read back from the disk tier's file names. */
    static ChunkKey parse(String blobHex, String chunkHex) {
        if (chunkHex.length() != 64) {
            throw new IllegalArgumentException("not a chunk digest: " + chunkHex);
        }
        return new ChunkKey(new Digest(blobHex.length() == 128 ? "sha512" : "sha256", blobHex), HEX.parseHex(chunkHex));
    }

    /** Whether {@code data} hashes to this key's chunk digest. */
    public boolean matches(byte[] data) {
        return java.security.MessageDigest.isEqual(chunk, Digests.sha256(data, 0, data.length));
    }

    /** A key from a blob and a raw sha256 (a peer's request). */
    public static ChunkKey of(Digest blob, byte[] sha256) {
        if (sha256.length != 32) {
            throw new IllegalArgumentException("a chunk digest is 32 bytes, not " + sha256.length);
        }
        return new ChunkKey(blob, sha256.clone());
    }

    public Digest blob() {
        return blob;
    }

    public String chunkHex() {
        return HEX.formatHex(chunk);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChunkKey k && hash == k.hash && blob.equals(k.blob) && Arrays.equals(chunk, k.chunk);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return blob.shortHex() + "/" + chunkHex();
    }
}
