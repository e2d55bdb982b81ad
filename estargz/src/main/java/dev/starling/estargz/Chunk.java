package dev.starling.estargz;

/**
 * A piece of a regular file that can be fetched and decompressed on its own.
 *
 * @param file              the file it belongs to
 * @param fileOffset        where the chunk starts inside the uncompressed file
 * @param size              uncompressed length
 * @param compressedOffset  start of the gzip member (zstd frame) holding the chunk
 * @param innerOffset       uncompressed bytes to skip inside that member before the chunk starts
 * @param compressedEnd     start of the next member: [compressedOffset, compressedEnd) is enough to decode
 * @param digest            sha256 of the uncompressed chunk, or null when the TOC has none
 * @param index             position in the layer's chunk table, which is in blob order
 */
public record Chunk(TocNode file, long fileOffset, long size, long compressedOffset, long innerOffset,
                    long compressedEnd, byte[] digest, int index) {

    public long compressedLength() {
        return compressedEnd - compressedOffset;
    }

    /** "path at offset N", for error messages. */
    public String describe() {
        // a chunk a peer asks for by digest has no file of this node's TOC
        return file == null ? "chunk at " + compressedOffset + "+" + innerOffset : Digests.quote(file.path()) + " chunk at " + fileOffset;
    }
}
