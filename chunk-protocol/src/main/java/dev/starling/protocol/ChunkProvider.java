package dev.starling.protocol;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/** What a node serves to its peers: the daemon decides (who may read what, disk tier, owner fill). */
@FunctionalInterface
public interface ChunkProvider {
    /**
     * Answers {@code from}'s request: per chunk, in order, its verified bytes, or null when this node
     * has not got it. Fails with {@link PeerException.Refused} to refuse it (a blob the requester may
     * not read here, a chunk its TOC does not list, a registry outside the allowlist).
     */
    CompletableFuture<List<byte[]>> serve(PeerIdentity from, Frame.Request request);

    /**
     * Other peers this node knows to hold what {@code request} asks for (node ids, most likely
     * first): named in the BUSY answer when every upload slot is taken, so the request goes to
     * them rather than wait here or go to the registry.
     */
    default List<String> holders(PeerIdentity from, Frame.Request request) {
        return List.of();
    }

    /**
     * The last byte of a complete answer to {@code request} (no chunk missed) has left for
     * {@code from}: it holds the chunks once it has verified them, and may be named to others then,
     * not while it is still receiving them.
     */
    default void sent(PeerIdentity from, Frame.Request request) {
    }
}
