package dev.starling.snapshot;

import java.time.Instant;
import java.util.Map;
import java.util.TreeMap;

/**
 * One snapshot as the metadata store keeps it.
 *
 * @param key     an active or view snapshot's key, a committed snapshot's name
 * @param id      its directory under {@code snapshots/}, never reused
 * @param parent  the committed snapshot it stacks on, or "" for none
 * @param size    bytes its directory holds (committed: measured at commit; a remote layer: 0)
 * @param inodes  inodes its directory holds, measured with {@code size}
 */
public record Snapshot(String key, long id, Kind kind, String parent, Map<String, String> labels, Instant created,
                       Instant updated, long size, long inodes) {
    public enum Kind { VIEW, ACTIVE, COMMITTED }

    /** The label the snapshotter puts on a committed snapshot served from a remote (eStargz) layer. */
    public static final String REMOTE_LABEL = "containerd.io/snapshot/remote";
    public static final String REMOTE_VALUE = "remote snapshot";

    public Snapshot {
        labels = java.util.Collections.unmodifiableMap(new TreeMap<>(labels));
        parent = parent == null ? "" : parent;
    }

    public boolean isRemote() {
        return REMOTE_VALUE.equals(labels.get(REMOTE_LABEL));
    }

    Snapshot withLabels(Map<String, String> newLabels, Instant now) {
        return new Snapshot(key, id, kind, parent, newLabels, created, now, size, inodes);
    }

    Snapshot committed(String name, Map<String, String> newLabels, long newSize, long newInodes, Instant now) {
        return new Snapshot(name, id, Kind.COMMITTED, parent, newLabels, created, now, newSize, newInodes);
    }
}
