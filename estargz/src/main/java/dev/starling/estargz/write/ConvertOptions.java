package dev.starling.estargz.write;

import java.util.List;

/**
 * How to write an eStargz blob. Defaults are the reference converter's, except that compression
 * always runs on every core: members are independent, so parallelism never changes the output.
 *
 * @param chunkSize        uncompressed bytes per chunk (4 MiB: the eStargz default)
 * @param minChunkSize     pack small files into one member until it holds this many compressed
 *                         bytes (0 = one member per chunk, as the reference does by default)
 * @param level            gzip level 0-9 (9: the reference converter's default)
 * @param threads          compression threads
 * @param lossless         copy the input tar byte for byte (DiffID-friendly, no reordering, no landmark)
 * @param prioritizedFiles paths read first at start-up, in access order; they go first, then
 *                         {@code .prefetch.landmark} (empty: {@code .no.prefetch.landmark} first)
 * @param prioritizedInAnyLayer the prioritized paths are a start-up profile of a whole image: a layer
 *                         takes those it holds and skips the rest (else a missing one is an error)
 */
public record ConvertOptions(int chunkSize, int minChunkSize, int level, int threads, boolean lossless,
                             List<String> prioritizedFiles, boolean prioritizedInAnyLayer) {
    public static final int DEFAULT_CHUNK_SIZE = 4 << 20;
    public static final int DEFAULT_LEVEL = 9;

    /** The largest chunk the reader accepts ({@code ReaderLimits.DEFAULT.maxChunkSize()}): larger would write blobs no reader opens. */
    public static final int MAX_CHUNK_SIZE = 64 << 20;

    public ConvertOptions(int chunkSize, int minChunkSize, int level, int threads, boolean lossless,
                          List<String> prioritizedFiles) {
        this(chunkSize, minChunkSize, level, threads, lossless, prioritizedFiles, false);
    }

    public ConvertOptions {
        if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
            throw new IllegalArgumentException("the chunk size must be 1 byte to 64 MiB (what readers accept), not "
                    + chunkSize);
        }
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be 1 or more (0: one per core), not " + threads);
        }
        if (minChunkSize < 0) {
            throw new IllegalArgumentException("min chunk size must be >= 0, not " + minChunkSize);
        }
        if (level < 0 || level > 9) {
            throw new IllegalArgumentException("gzip level must be 0-9, not " + level);
        }
        if (threads <= 0) {
            threads = Runtime.getRuntime().availableProcessors();
        }
        prioritizedFiles = List.copyOf(prioritizedFiles);
        if (lossless && !prioritizedFiles.isEmpty()) {
            throw new IllegalArgumentException("lossless conversion keeps the input order, so it cannot prioritize files");
        }
    }

    public static ConvertOptions defaults() {
        return new ConvertOptions(DEFAULT_CHUNK_SIZE, 0, DEFAULT_LEVEL, 0, false, List.of());
    }

    public ConvertOptions withChunkSize(int v) {
        return new ConvertOptions(v, minChunkSize, level, threads, lossless, prioritizedFiles, prioritizedInAnyLayer);
    }

    public ConvertOptions withMinChunkSize(int v) {
        return new ConvertOptions(chunkSize, v, level, threads, lossless, prioritizedFiles, prioritizedInAnyLayer);
    }

    public ConvertOptions withLevel(int v) {
        return new ConvertOptions(chunkSize, minChunkSize, v, threads, lossless, prioritizedFiles, prioritizedInAnyLayer);
    }

    public ConvertOptions withThreads(int v) {
        return new ConvertOptions(chunkSize, minChunkSize, level, v, lossless, prioritizedFiles, prioritizedInAnyLayer);
    }

    public ConvertOptions withLossless(boolean v) {
        return new ConvertOptions(chunkSize, minChunkSize, level, threads, v, prioritizedFiles, prioritizedInAnyLayer);
    }

    public ConvertOptions withPrioritizedFiles(List<String> v) {
        return new ConvertOptions(chunkSize, minChunkSize, level, threads, lossless, v, prioritizedInAnyLayer);
    }

    public ConvertOptions withPrioritizedInAnyLayer(boolean v) {
        return new ConvertOptions(chunkSize, minChunkSize, level, threads, lossless, prioritizedFiles, v);
    }
}
