package dev.starling.discovery;

import java.net.InetSocketAddress;

/** A node of the cluster as the others see it: its id, where it serves chunks, and its zone. */
public record Member(String nodeId, InetSocketAddress chunkAddress, String zone) {
    public Member {
        if (nodeId == null || nodeId.isBlank()) {
            throw new IllegalArgumentException("a member needs a node id");
        }
        zone = zone == null ? "" : zone;
    }
}
