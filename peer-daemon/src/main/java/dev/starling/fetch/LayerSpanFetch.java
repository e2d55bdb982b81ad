package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.InvalidBlobException;
import dev.starling.estargz.TocIndex;
import java.io.IOException;
import java.util.List;
import java.util.function.Predicate;

/**
 * How a layer's reads fetch what the node does not hold: the layer's span plan ({@link SpanPlan},
 * within {@code unit} and never past the fetch unit's next multiple), its {@link Origin}, and its
 * counters and last error for what the fetch cost or why it failed.
 */
final class LayerSpanFetch implements ChunkStore.Fetch {
    private final LayerReader layer;
    private final long unit;
    private final long stopAt;
    private final boolean keepInMemory;

    LayerSpanFetch(LayerReader layer, long unit, long stopAt, boolean keepInMemory) {
        this.layer = layer;
        this.unit = unit;
        this.stopAt = stopAt;
        this.keepInMemory = keepInMemory;
    }

    @Override
    public List<Chunk> span(List<Chunk> needed, Predicate<Chunk> wanted) {
        Chunk c = needed.getFirst();
        // a span ends at the next multiple of the fetch unit: each aligned unit has one owner among the
        // peers, who fills it once, and a reader never holds chunks of one unit while it waits for another's
        // (two nodes each holding what the other waits for would wait until a timeout, then both fetch it)
        FetchOptions options = layer.options();
        long unitEnd = (c.compressedOffset() / options.fetchUnit() + 1) * options.fetchUnit();
        TocIndex index = layer.index();
        return SpanPlan.plan(index, c.index(), unit, options.maxGap(), Math.min(stopAt, unitEnd),
                k -> wanted.test(index.chunkAt(k)));
    }

    @Override
    public Origin origin() {
        return layer.origin();
    }

    @Override
    public boolean keepInMemory() {
        return keepInMemory;
    }

    @Override
    public void fetched(Origin.Span span) {
        layer.counters().fetched(span);
    }

    @Override
    public IOException failed(List<Chunk> span, IOException cause) {
        if (span.size() == 1 && cause instanceof InvalidBlobException) {
            return layer.failure(new IOException("layer " + layer.digest() + ": " + cause.getMessage(), cause));
        }
        long start = span.getFirst().compressedOffset();
        long end = span.getLast().compressedEnd();
        return layer.failure(new IOException("fetching " + (end - start) + " bytes at " + start + " of layer " + layer.digest()
                + " for " + span.getFirst().describe() + " failed: " + cause.getMessage(), cause));
    }
}
