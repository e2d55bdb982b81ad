package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.InvalidBlobException;
import java.io.IOException;
import java.util.List;

/**
 * Where chunks a node does not hold come from: the one seam of the read path below the tiers
 * (memory -> disk -> origin). The registry is one origin; a peer that falls back to the registry
 * is another. Whatever the source, every chunk handed back is verified against its TOC digest.
 */
public interface Origin {
    /**
     * Fetches the span covering {@code chunks} (adjacent in blob order, as {@link SpanPlan} chose
     * them) and decodes each one.
     *
     * @return per chunk, in order, its verified bytes or why its bytes are bad; and what it cost
     * @throws IOException when the span could not be had at all (the source is down, say)
     */
    Span fetch(List<Chunk> chunks) throws IOException;

    /**
     * What one fetch brought: a result per chunk; the compressed bytes and requests it took from the
     * registry; and the chunk bytes that came from peers.
     */
    record Span(List<Fetched> chunks, long bytes, int requests, long peerBytes) {
        public Span(List<Fetched> chunks, long bytes, int requests) {
            this(chunks, bytes, requests, 0);
        }
    }

    /** One chunk of a span: its verified bytes, or the failure that makes them unusable. */
    record Fetched(byte[] data, InvalidBlobException failure) {
        public static Fetched of(byte[] data) {
            return new Fetched(data, null);
        }

        public static Fetched failed(InvalidBlobException failure) {
            return new Fetched(null, failure);
        }
    }
}
