package dev.starling.estargz.write;

/**
 * What a conversion produced: everything a manifest needs for the new layer.
 *
 * @param blobDigest       sha256 of the eStargz blob (the layer descriptor's digest)
 * @param blobSize         its size in bytes
 * @param tocDigest        value for the {@code containerd.io/snapshot/stargz/toc.digest} annotation
 * @param diffId           sha256 of the decompressed blob, for the config's {@code rootfs.diff_ids}
 * @param uncompressedSize value for {@code io.containers.estargz.uncompressed-size}
 * @param tocOffset        where the TOC member starts
 * @param entries          TOC entries written (chunks included)
 */
public record ConvertResult(String blobDigest, long blobSize, String tocDigest, String diffId, long uncompressedSize,
                            long tocOffset, int entries) {
}
