package dev.starling.estargz;

/**
 * Bounds that keep a hostile blob from exhausting memory: every allocation the reader makes on the
 * word of a TOC is checked against one of these first.
 *
 * @param maxTocBytes    largest TOC accepted, compressed or not (a 1M-file TOC is about 300 MB)
 * @param maxChunkSize   largest uncompressed chunk (writers use 4 MiB; 64 MiB leaves room for odd producers)
 * @param maxMemberBytes largest span read to decode one chunk: compressed span, and innerOffset + size
 */
public record ReaderLimits(long maxTocBytes, int maxChunkSize, int maxMemberBytes) {
    public static final ReaderLimits DEFAULT = new ReaderLimits(512L << 20, 64 << 20, 256 << 20);
}
