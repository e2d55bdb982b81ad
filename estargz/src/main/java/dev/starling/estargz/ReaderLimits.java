package dev.starling.estargz;

/**
 * Bounds that keep a hostile blob from exhausting memory: every allocation the reader makes on the
 * word of a TOC is checked against one of these first.
 *
 * @param maxTocBytes    largest TOC accepted, compressed or not (a 1M-file TOC is about 300 MB)
 * @param maxChunkSize   largest uncompressed chunk (writers use 4 MiB; 64 MiB leaves room for odd producers)
 * @param maxMemberBytes largest span read to decode one chunk: compressed span, and innerOffset + size
 * @param maxEntries     most TOC entries: what bounds the index's heap (a few hundred bytes per entry
 *                       while it is built), since a TOC of 1 MB compressed can inflate to 500 MB
 * @param maxDepth       deepest path: Linux names at most 4096 bytes in one call, so 2048 levels of
 *                       one-letter names is the most a program can reach in one path anyway
 */
public record ReaderLimits(long maxTocBytes, int maxChunkSize, int maxMemberBytes, int maxEntries, int maxDepth) {
    public static final ReaderLimits DEFAULT = new ReaderLimits(512L << 20, 64 << 20, 256 << 20, 2_000_000, 2048);
    /** The longest name the kernel returns (NAME_MAX), in bytes. */
    public static final int MAX_NAME_BYTES = 255;
    /** The longest symlink target the kernel follows (PATH_MAX less the NUL), in bytes. */
    public static final int MAX_LINK_TARGET_BYTES = 4095;

    public ReaderLimits(long maxTocBytes, int maxChunkSize, int maxMemberBytes) {
        this(maxTocBytes, maxChunkSize, maxMemberBytes, DEFAULT.maxEntries(), DEFAULT.maxDepth());
    }
}
