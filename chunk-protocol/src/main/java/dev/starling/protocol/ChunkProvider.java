package dev.starling.protocol;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/** What a node serves to its peers: the daemon decides (disk tier, owner fill from the registry). */
@FunctionalInterface
public interface ChunkProvider {
    /**
     * Answers a request: per chunk, in order, its verified bytes, or null when this node has not got
     * it. Fails with {@link PeerException.Refused} to refuse it (a registry outside the allowlist).
     */
    CompletableFuture<List<byte[]>> serve(Frame.Request request);
}
