package dev.starling.daemon;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.fetch.ReadCounters;
import dev.starling.fuse.HeldLayer;
import dev.starling.fuse.StoreMount;
import dev.starling.layers.OpenLayers;
import dev.starling.snapshot.Snapshot;
import dev.starling.snapshot.SnapshotServer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Locale;

/** What `starling status` shows: members, peers' use, tiers, mounts, front ends, and every open layer's state. */
final class StatusDocument {
    private StatusDocument() {
    }

    /**
     * @param snapshotter the containerd snapshotter, or null when there is none
     * @param layerStore  the Additional Layer Store, or null when there is none
     */
    static ObjectNode of(Node node, String warmup, Collection<Path> mounts, SnapshotServer snapshotter, StoreMount layerStore) {
        DaemonConfig config = node.config;
        ObjectNode s = ControlSocket.JSON.createObjectNode();
        s.put("node", config.nodeId()).put("pid", ProcessHandle.current().pid()).put("cluster", config.clusterId())
                .put("zone", config.zone()).put("warmup", warmup);
        ArrayNode members = s.putArray("members");
        node.membership.members().forEach(m -> members.add(m.nodeId()));
        ArrayNode quarantined = s.putArray("quarantined");
        node.quarantine.current().forEach(quarantined::add);
        s.put("quarantines", node.quarantine.count());
        s.put("bytesServedToPeers", node.peers.bytesServed());
        s.put("bytesFilledForPeers", node.provider.fillBytes());
        s.put("refusedRegistryRequests", node.provider.refused());
        s.put("peerAccess", node.access.mode().name().toLowerCase(Locale.ROOT));
        s.put("forbiddenPeerRequests", node.provider.forbidden());
        s.put("refusedPeerConnections", node.peers.refusedConnections());
        s.put("rateLimitedPeerRequests", node.peers.refusedRequests());
        s.put("servedByHolders", node.fallbacks.servedByHolders());
        s.put("busyForUploadSlots", node.peers.busyForSlots());
        ObjectNode fell = s.putObject("peerFallbacks");
        node.fallbacks.counts().forEach((reason, n) -> fell.put(reason.label(), n));
        s.putObject("memory").put("residentBytes", ProcessMemory.residentBytes()).put("heapUsedBytes", ProcessMemory.heapUsedBytes())
                .put("heapMaxBytes", ProcessMemory.heapMaxBytes()).put("memoryTierBytes", node.store.memoryBytes())
                .put("memoryTierMaxBytes", node.store.memoryMaxBytes());
        s.put("diskTierBytes", node.store.diskBytes());
        ReadCounters totals = node.store.totals(); // since the node started: layers closed since count too
        s.putObject("fetched").put("peerBytes", totals.peerBytes()).put("registryBytes", totals.fetchedBytes())
                .put("registryRequests", totals.fetchRequests()).put("failures", totals.failures());
        ArrayNode mounted = s.putArray("mounts");
        mounts.forEach(p -> mounted.add(p.toString()));
        if (snapshotter != null) {
            ObjectNode sn = s.putObject("snapshotter");
            sn.put("socket", snapshotter.socket().toString());
            ArrayNode list = sn.putArray("snapshots");
            for (Snapshot snap : snapshotter.snapshots()) {
                list.addObject().put("key", snap.key()).put("kind", snap.kind().name().toLowerCase(Locale.ROOT))
                        .put("parent", snap.parent()).put("remote", snap.isRemote());
            }
        }
        if (layerStore != null) {
            ObjectNode st = s.putObject("store");
            st.put("mountPoint", layerStore.mountPoint().toString()).put("images", node.images.size());
            ArrayNode held = st.putArray("layers");
            for (HeldLayer h : layerStore.fileSystem().held()) {
                held.addObject().put("image", h.imageRef()).put("key", h.key()).put("users", h.users())
                        .put("openFiles", h.openFiles());
            }
        }
        ArrayNode open = s.putArray("layers");
        for (OpenLayers.Layer layer : node.layers.layers()) {
            try {
                open.add(ControlSocket.JSON.readTree(layer.reader().stateJson()));
            } catch (IOException e) {
                throw new IllegalStateException("the state JSON is ours", e);
            }
        }
        return s;
    }
}
