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
 */
public record ConvertOptions(int chunkSize, int minChunkSize, int level, int threads, boolean lossless,
                             List<String> prioritizedFiles) {
    public static final int DEFAULT_CHUNK_SIZE = 4 << 20;
    public static final int DEFAULT_LEVEL = 9;

    public ConvertOptions {
        if (chunkSize <= 0) {
            chunkSize = DEFAULT_CHUNK_SIZE;
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
        return new ConvertOptions(v, minChunkSize, level, threads, lossless, prioritizedFiles);
    }

    public ConvertOptions withMinChunkSize(int v) {
        return new ConvertOptions(chunkSize, v, level, threads, lossless, prioritizedFiles);
    }

    public ConvertOptions withLevel(int v) {
        return new ConvertOptions(chunkSize, minChunkSize, v, threads, lossless, prioritizedFiles);
    }

    public ConvertOptions withThreads(int v) {
        return new ConvertOptions(chunkSize, minChunkSize, level, v, lossless, prioritizedFiles);
    }

    public ConvertOptions withLossless(boolean v) {
        return new ConvertOptions(chunkSize, minChunkSize, level, threads, v, prioritizedFiles);
    }

    public ConvertOptions withPrioritizedFiles(List<String> v) {
        return new ConvertOptions(chunkSize, minChunkSize, level, threads, lossless, v);
    }
}
