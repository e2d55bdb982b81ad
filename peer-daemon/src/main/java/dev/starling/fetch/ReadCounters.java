package dev.starling.fetch;

import java.util.concurrent.atomic.LongAdder;

/**
 * What reads took and fetches cost: one per open layer, and one per node ({@link ChunkStore#totals()})
 * that every layer's counts also go to. The node's totals outlive the layers, so the node's metrics
 * are counters that never go down when a layer closes and another opens the same blob again.
 */
public final class ReadCounters {
    private final ReadCounters node;
    private final LongAdder servedFromMemory = new LongAdder();
    private final LongAdder servedFromDisk = new LongAdder();
    private final LongAdder servedFromNetwork = new LongAdder();
    private final LongAdder fetchedBytes = new LongAdder();
    private final LongAdder fetchRequests = new LongAdder();
    private final LongAdder peerBytes = new LongAdder();
    private final LongAdder failures = new LongAdder();
    private final LongAdder registryVerificationFailures = new LongAdder();
    private final LongAdder[] readCounts = {new LongAdder(), new LongAdder(), new LongAdder()};
    private final LongAdder[] readNanos = {new LongAdder(), new LongAdder(), new LongAdder()};

    /** The node's totals. */
    ReadCounters() {
        this(null);
    }

    /** A layer's counts, added to {@code node}'s as well. */
    ReadCounters(ReadCounters node) {
        this.node = node;
    }

    void served(LayerReader.ReadSource source, long bytes, long nanos) {
        (switch (source) {
            case MEMORY -> servedFromMemory;
            case DISK -> servedFromDisk;
            case NETWORK -> servedFromNetwork;
        }).add(bytes);
        readCounts[source.ordinal()].increment();
        readNanos[source.ordinal()].add(nanos);
        if (node != null) {
            node.served(source, bytes, nanos);
        }
    }

    void fetched(Origin.Span span) {
        fetchRequests.add(span.requests());
        fetchedBytes.add(span.bytes());
        peerBytes.add(span.peerBytes());
        if (node != null) {
            node.fetched(span);
        }
    }

    void failed(boolean verification) {
        failures.increment();
        if (verification) {
            registryVerificationFailures.increment();
        }
        if (node != null) {
            node.failed(verification);
        }
    }

    /** Bytes FUSE reads took from the memory tier. */
    public long servedFromMemory() {
        return servedFromMemory.sum();
    }

    public long servedFromDisk() {
        return servedFromDisk.sum();
    }

    /** Bytes FUSE reads took from the network (peers or registry). */
    public long servedFromNetwork() {
        return servedFromNetwork.sum();
    }

    /** Compressed bytes fetched from the registry for chunks (not counting footers and TOCs). */
    public long fetchedBytes() {
        return fetchedBytes.sum();
    }

    /** Range requests to the registry for chunks. */
    public long fetchRequests() {
        return fetchRequests.sum();
    }

    /** Chunk bytes received from peers. */
    public long peerBytes() {
        return peerBytes.sum();
    }

    /** Fetches or verifications that failed. */
    public long failures() {
        return failures.sum();
    }

    /** Chunks the registry served that did not match the TOC (peers' bad chunks are their quarantines). */
    public long registryVerificationFailures() {
        return registryVerificationFailures.sum();
    }

    /** Chunk reads answered by {@code source}. */
    public long readCount(LayerReader.ReadSource source) {
        return readCounts[source.ordinal()].sum();
    }

    /** Time those reads took, in nanoseconds. */
    public long readNanos(LayerReader.ReadSource source) {
        return readNanos[source.ordinal()].sum();
    }
}
