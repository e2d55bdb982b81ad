package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.InvalidBlobException;
import dev.starling.estargz.RangeReader;
import java.io.Closeable;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A layer's chunks from its blob in the registry: one Range request per span, each chunk inflated
 * and verified. A chunk whose span is far longer than what it decodes to is read piece by piece
 * instead ({@link SpanPlan#oversized}). Fetch buffers count against the node's bytes-in-flight
 * budget.
 */
public final class RegistryOrigin implements Origin {
    private final RangeReader blob;
    private final ChunkDecoder decoder;
    private final FetchScheduler scheduler;

    /** A layer's origin whose fetch buffers count against {@code store}'s bytes-in-flight budget. */
    public RegistryOrigin(RangeReader blob, ChunkDecoder decoder, ChunkStore store) {
        this(blob, decoder, store.scheduler());
    }

    RegistryOrigin(RangeReader blob, ChunkDecoder decoder, FetchScheduler scheduler) {
        this.blob = blob;
        this.decoder = decoder;
        this.scheduler = scheduler;
    }

    @Override
    public Span fetch(List<Chunk> chunks) throws IOException {
        if (chunks.size() == 1 && SpanPlan.oversized(chunks.getFirst())) {
            return streamed(chunks.getFirst());
        }
        long start = chunks.getFirst().compressedOffset();
        long end = chunks.stream().mapToLong(Chunk::compressedEnd).max().orElseThrow();
        int length = Math.toIntExact(end - start);
        byte[] span;
        try (Closeable held = scheduler.holdBytes(length)) {
            span = blob.read(start, length);
        }

        return new Span(decode(decoder, chunks, start, span), span.length, 1);
    }

    /**
     * Each chunk decoded and verified out of {@code span}, the blob's bytes from {@code start}: what
     * a node does with a Range response, for itself or on a peer's behalf.
     */
    public static List<Fetched> decode(ChunkDecoder decoder, List<Chunk> chunks, long start, byte[] span) {
        List<Fetched> out = new ArrayList<>(chunks.size());
        for (Chunk chunk : chunks) {
            byte[] member = chunks.size() == 1 && chunk.compressedOffset() == start && chunk.compressedLength() == span.length
                    ? span // the common case for large files: no 4 MiB copy
                    : Arrays.copyOfRange(span, (int) (chunk.compressedOffset() - start), (int) (chunk.compressedEnd() - start));
            try {
                out.add(Fetched.of(decoder.decode(chunk, member)));
            } catch (InvalidBlobException e) {
                out.add(Fetched.failed(e));
            }
        }
        return out;
    }

    /** An oversized chunk, read piece by piece and inflated as the pieces come, until its bytes are out. */
    private Span streamed(Chunk c) throws IOException {
        long[] cost = new long[2];
        int firstWindow = (int) Math.min(c.compressedLength(), c.innerOffset() + c.size() + SpanPlan.STREAM_SLACK);
        RangeReader counting = new RangeReader() {
            @Override
            public long size() throws IOException {
                return blob.size();
            }

            @Override
            public byte[] read(long offset, int length) throws IOException {
                byte[] b = blob.read(offset, length);
                cost[0] += b.length;
                cost[1]++;
                return b;
            }
        };
        Fetched result;
        try (Closeable held = scheduler.holdBytes(8L << 20)) {
            result = Fetched.of(decoder.decode(c, counting, firstWindow));
        } catch (InvalidBlobException e) {
            result = Fetched.failed(e);
        }
        return new Span(List.of(result), cost[0], (int) cost[1]);
    }
}
