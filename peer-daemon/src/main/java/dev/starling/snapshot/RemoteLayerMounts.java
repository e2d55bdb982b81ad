package dev.starling.snapshot;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The snapshotter's one seam to lazy layers: a committed snapshot served by a FUSE mount of an
 * eStargz layer instead of a directory containerd unpacked. The labels are those containerd passed
 * to Prepare (image reference, layer digest, TOC digest), persisted with the snapshot.
 */
interface RemoteLayerMounts {
    /**
     * Mounts the layer the labels name at {@code dir}.
     *
     * @throws IOException when it cannot be served lazily (not eStargz, no TOC digest, registry
     *                     down...): the snapshotter then prepares an ordinary snapshot
     */
    void mount(Path dir, Map<String, String> labels) throws IOException;

    /** Makes sure the layer at {@code dir} answers, mounting it again from the labels if not (after a restart). */
    void check(Path dir, Map<String, String> labels) throws IOException;

    /** Unmounts {@code dir} if a layer is mounted there; idempotent. */
    void unmount(Path dir);
}
