package dev.starling.fuse;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.TocNode;
import java.util.ArrayList;
import java.util.List;

/**
 * Where one open file's reader is, and which chunks to ask for ahead of it. A read that starts
 * where the previous one ended, or a little past it (the kernel's readahead sends several requests
 * at once, out of order), marks a sequential reader: the chunks of the next window are asked for
 * now, in parallel, instead of one at a time as the reader reaches them. The window starts at
 * {@link #INITIAL}; each time the reader gets into the second half of what was asked for, the next
 * window, twice as long (up to {@link MountOptions#readAheadBytes}), is asked for: as the kernel's
 * own readahead grows. So a reader that stops early costs little, and one that goes on soon has
 * 32 MiB on its way. A random reader never triggers it.
 */
final class ReadAheadWindow {
    /**
     * The first read-ahead of a sequential reader: a reader that stops after a few MiB (a header, a
     * config) must not cost the registry 32 MiB.
     */
    static final long INITIAL = 1L << 20;
    /** How far from the previous read's end a read may start and still count as sequential. */
    static final long SEQUENTIAL_SLACK = 4L << 20;

    private final TocIndex index;
    private final TocNode file;
    private final long maxBytes;
    /** Where the last read ended, how far chunks have been asked for, and the window (0: not sequential yet). */
    private long readEnd;
    private long aheadUntil;
    private long window;

    ReadAheadWindow(TocIndex index, TocNode file, long maxBytes) {
        this.index = index;
        this.file = file;
        this.maxBytes = maxBytes;
    }

    /** A read of {@code [offset, end)}: the chunks to ask for ahead of it now, often none. */
    synchronized List<Chunk> read(long offset, long end) {
        long previousEnd = readEnd;
        readEnd = Math.max(previousEnd, end);
        boolean sequential = offset > 0 && offset >= previousEnd - SEQUENTIAL_SLACK && offset <= previousEnd + SEQUENTIAL_SLACK;
        if (maxBytes == 0 || !sequential) {
            return List.of();
        }
        long next;
        if (window == 0) {
            next = Math.min(INITIAL, maxBytes);
        } else if (end >= aheadUntil - window / 2) {
            // the reader is into the second half of what was asked for: ask for the next, twice as far
            next = Math.min(maxBytes, window * 2);
        } else {
            return List.of(); // enough is on its way
        }
        long from = Math.max(end, aheadUntil);
        long until = Math.min(file.size(), end + next);
        if (from >= until) {
            return List.of();
        }
        List<Chunk> upcoming = new ArrayList<>();
        for (int i = index.chunkIndexAt(file, from); i >= 0 && i < file.chunkCount(); i++) {
            Chunk c = index.chunk(file, i);
            if (c.fileOffset() >= until) {
                break;
            }
            if (c.fileOffset() >= aheadUntil) { // a chunk that starts before was asked for already
                upcoming.add(c);
            }
        }
        if (!upcoming.isEmpty()) {
            Chunk last = upcoming.getLast();
            aheadUntil = last.fileOffset() + last.size();
            window = next;
        }
        return upcoming;
    }
}
