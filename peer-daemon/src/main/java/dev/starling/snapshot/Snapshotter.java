package dev.starling.snapshot;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * containerd's overlay snapshotter semantics over a root directory, with remote layers: active,
 * view and committed snapshots in parent chains, each an id'd directory {@code snapshots/<id>/}
 * ({@code fs} the upper directory or the layer's tree, {@code work} overlay's work directory).
 * A Prepare that names a target ({@code containerd.io/snapshot.ref}) is first tried as a remote
 * layer: mounted lazily at {@code fs}, committed under the target at once, and answered
 * {@link SnapshotException.AlreadyExists}, so containerd never downloads it; anything that cannot
 * be served so falls back to an ordinary snapshot that containerd unpacks into.
 */
public final class Snapshotter implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Snapshotter.class.getName());
    /** The label containerd's unpacker puts on a Prepare: the chain ID the layer is committed under. */
    public static final String TARGET_LABEL = "containerd.io/snapshot.ref";
    /** containerd's bound on one label, key and value together. */
    static final int MAX_LABEL_BYTES = 4096;

    /** A mount containerd performs, as the API's {@code Mount}. */
    public record Mount(String type, String source, List<String> options) {
    }

    /** Bytes and inodes a snapshot holds. */
    public record Usage(long size, long inodes) {
    }

    private final Path root;
    private final MetaStore meta;
    private final RemoteLayerMounts remote;
    private final Clock clock;

    /** Opens (or creates) the snapshotter's state under {@code root}: {@code metadata.mv.db} and {@code snapshots/}. */
    public Snapshotter(Path root, RemoteLayerMounts remote, Clock clock) throws IOException {
        this.root = Files.createDirectories(root);
        Files.createDirectories(root.resolve("snapshots"));
        this.meta = new MetaStore(root.resolve("metadata.mv.db"));
        this.remote = remote;
        this.clock = clock;
    }

    private Path dir(long id) {
        return root.resolve("snapshots").resolve(Long.toString(id));
    }

    private Path fs(Snapshot s) {
        return dir(s.id()).resolve("fs");
    }

    private static void checkKey(String key, String what) throws SnapshotException.InvalidArgument {
        if (key == null || key.isEmpty()) {
            throw new SnapshotException.InvalidArgument(what + " is empty");
        }
    }

    private static void checkLabels(Map<String, String> labels) throws SnapshotException.InvalidArgument {
        for (Map.Entry<String, String> l : labels.entrySet()) {
            int bytes = l.getKey().getBytes(StandardCharsets.UTF_8).length + l.getValue().getBytes(StandardCharsets.UTF_8).length;
            if (l.getKey().isEmpty() || bytes > MAX_LABEL_BYTES) {
                throw new SnapshotException.InvalidArgument("label \"" + abbreviated(l.getKey()) + "\" is " + bytes
                        + " bytes with its value; a label may have at most " + MAX_LABEL_BYTES);
            }
        }
    }

    private static String abbreviated(String s) {
        return s.length() <= 80 ? s : s.substring(0, 80) + "...";
    }

    /** Prepares an active snapshot on {@code parent} (or "" for none); for a remote layer, see the class comment. */
    public List<Mount> prepare(String key, String parent, Map<String, String> labels) throws SnapshotException, IOException {
        Snapshot active = create(key, parent, labels, Snapshot.Kind.ACTIVE);
        String target = labels.get(TARGET_LABEL);
        if (target != null && !target.isEmpty()) {
            tryRemote(active, target); // answers AlreadyExists when it serves the layer
        }
        return mounts(key);
    }

    /** A read-only view of {@code parent}. */
    public List<Mount> view(String key, String parent, Map<String, String> labels) throws SnapshotException, IOException {
        create(key, parent, labels, Snapshot.Kind.VIEW);
        return mounts(key);
    }

    private Snapshot create(String key, String parent, Map<String, String> labels, Snapshot.Kind kind)
            throws SnapshotException, IOException {
        checkKey(key, "the snapshot key");
        checkLabels(labels);
        Snapshot s;
        synchronized (this) {
            if (meta.get(key) != null) {
                throw new SnapshotException.AlreadyExists("snapshot " + key + ": already exists");
            }
            Snapshot p = null;
            if (parent != null && !parent.isEmpty()) {
                p = meta.get(parent);
                if (p == null) {
                    throw new SnapshotException.NotFound("parent snapshot " + parent + " does not exist");
                }
                if (p.kind() != Snapshot.Kind.COMMITTED) {
                    throw new SnapshotException.InvalidArgument("parent " + parent + " is not a committed snapshot");
                }
            }
            Instant now = clock.instant();
            s = new Snapshot(key, meta.nextId(), kind, parent, labels, now, now, 0, 0);
            Path dir = dir(s.id());
            try {
                Files.createDirectories(dir.resolve("fs"));
                if (kind == Snapshot.Kind.ACTIVE) {
                    Files.createDirectories(dir.resolve("work"));
                }
                if (p != null) { // the upper directory is owned as the layer below's root is
                    Path below = fs(p);
                    Files.setAttribute(dir.resolve("fs"), "unix:uid", Files.getAttribute(below, "unix:uid"));
                    Files.setAttribute(dir.resolve("fs"), "unix:gid", Files.getAttribute(below, "unix:gid"));
                }
                meta.put(s);
                meta.commit();
            } catch (IOException | RuntimeException e) {
                meta.rollback();
                deleteTree(dir);
                throw e;
            }
        }
        return s;
    }

    /** Serves {@code active} as a remote layer committed under {@code target}, or returns to let it be an ordinary one. */
    private void tryRemote(Snapshot active, String target) throws SnapshotException, IOException {
        Path fs = fs(active);
        try {
            remote.mount(fs, active.labels());
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.INFO, "layer " + target + " is not served lazily (" + e.getMessage() + "); containerd unpacks it",
                    e instanceof RuntimeException ? e : null);
            return;
        }
        Map<String, String> labels = new TreeMap<>(active.labels());
        labels.put(Snapshot.REMOTE_LABEL, Snapshot.REMOTE_VALUE);
        try {
            synchronized (this) {
                Snapshot again = meta.get(active.key());
                if (again == null || again.id() != active.id()) {
                    throw new SnapshotException.NotFound("snapshot " + active.key() + " was removed while its layer was mounted");
                }
                if (meta.get(target) != null) {
                    throw new SnapshotException.AlreadyExists("target snapshot " + target + ": already exists");
                }
                meta.remove(active.key());
                meta.put(active.committed(target, labels, 0, 0, clock.instant()));
                meta.commit();
            }
        } catch (SnapshotException.AlreadyExists raced) {
            remote.unmount(fs); // another Prepare of the same layer won: it stays, this one goes
            remove(active.key());
            throw raced;
        } catch (SnapshotException | RuntimeException e) {
            remote.unmount(fs);
            throw e;
        }
        throw new SnapshotException.AlreadyExists("target snapshot " + target + ": already exists");
    }

    /** The mounts of an active snapshot or a view, once every remote layer below it answers. */
    public List<Mount> mounts(String key) throws SnapshotException, IOException {
        Snapshot s;
        List<Snapshot> chain;
        synchronized (this) {
            s = require(key);
            if (s.kind() == Snapshot.Kind.COMMITTED) {
                throw new SnapshotException.FailedPrecondition("snapshot " + key + " is committed, not active or a view");
            }
            chain = parents(s);
        }
        for (Snapshot p : chain) {
            if (p.isRemote()) {
                try {
                    remote.check(fs(p), p.labels());
                } catch (IOException e) {
                    throw new SnapshotException.Unavailable("layer " + p.key() + " unavailable: " + e.getMessage());
                }
            }
        }
        return mountsOf(s, chain);
    }

    private List<Mount> mountsOf(Snapshot s, List<Snapshot> parents) {
        Path dir = dir(s.id());
        boolean view = s.kind() == Snapshot.Kind.VIEW;
        if (parents.isEmpty()) {
            return List.of(new Mount("bind", dir.resolve("fs").toString(), List.of(view ? "ro" : "rw", "rbind")));
        }
        if (view && parents.size() == 1) {
            return List.of(new Mount("bind", fs(parents.getFirst()).toString(), List.of("ro", "rbind")));
        }
        List<String> options = new ArrayList<>();
        if (!view) {
            options.add("workdir=" + dir.resolve("work"));
            options.add("upperdir=" + dir.resolve("fs"));
        }
        StringBuilder lower = new StringBuilder("lowerdir=");
        for (int i = 0; i < parents.size(); i++) {
            lower.append(i == 0 ? "" : ":").append(fs(parents.get(i)));
        }
        options.add(lower.toString());
        return List.of(new Mount("overlay", "overlay", options));
    }

    /** The committed snapshots below {@code s}, nearest first. */
    private List<Snapshot> parents(Snapshot s) throws SnapshotException {
        List<Snapshot> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        String p = s.parent();
        while (!p.isEmpty()) {
            if (!seen.add(p)) {
                throw new SnapshotException.FailedPrecondition("the parents of " + s.key() + " form a cycle at " + p);
            }
            Snapshot parent = meta.get(p);
            if (parent == null) {
                throw new SnapshotException.NotFound("parent " + p + " of " + s.key() + " does not exist");
            }
            out.add(parent);
            p = parent.parent();
        }
        return out;
    }

    private Snapshot require(String key) throws SnapshotException {
        if (key == null || key.isEmpty()) {
            throw new SnapshotException.InvalidArgument("the snapshot key is empty");
        }
        Snapshot s = meta.get(key);
        if (s == null) {
            throw new SnapshotException.NotFound("snapshot " + key + " does not exist");
        }
        return s;
    }

    /** Commits the active snapshot {@code key} as {@code name}, measuring what it holds. */
    public void commit(String name, String key, Map<String, String> labels) throws SnapshotException, IOException {
        checkKey(name, "the committed snapshot's name");
        checkLabels(labels);
        synchronized (this) {
            Snapshot s = require(key);
            if (s.kind() != Snapshot.Kind.ACTIVE) {
                throw new SnapshotException.FailedPrecondition("snapshot " + key + " is " + s.kind().name().toLowerCase()
                        + ", not active: only an active snapshot can be committed");
            }
            if (meta.get(name) != null) {
                throw new SnapshotException.AlreadyExists("snapshot " + name + ": already exists");
            }
            Usage usage = measure(dir(s.id()).resolve("fs"));
            meta.remove(key);
            meta.put(s.committed(name, labels, usage.size(), usage.inodes(), clock.instant()));
            meta.commit();
        }
    }

    /** Removes a snapshot no other stacks on, with its directory (a remote layer is unmounted first). */
    public void remove(String key) throws SnapshotException, IOException {
        Snapshot s;
        synchronized (this) {
            s = require(key);
            for (Snapshot other : meta.all()) {
                if (other.parent().equals(key)) {
                    throw new SnapshotException.FailedPrecondition("cannot remove snapshot " + key + ": "
                            + other.key() + " has it as its parent");
                }
            }
            meta.remove(key);
            meta.commit();
        }
        if (s.isRemote()) {
            remote.unmount(fs(s));
        }
        deleteTree(dir(s.id()));
    }

    public synchronized Snapshot stat(String key) throws SnapshotException {
        return require(key);
    }

    /**
     * Updates a snapshot's labels, the only thing that may change: {@code paths} empty or
     * {@code labels} replaces them all, {@code labels.<key>} sets or (absent in {@code labels}) removes one.
     */
    public synchronized Snapshot update(String key, Map<String, String> labels, List<String> paths) throws SnapshotException {
        Snapshot s = require(key);
        checkLabels(labels);
        Map<String, String> updated = new TreeMap<>(s.labels());
        if (paths.isEmpty() || paths.contains("labels")) {
            updated = new TreeMap<>(labels);
        } else {
            for (String path : paths) {
                if (!path.startsWith("labels.")) {
                    throw new SnapshotException.InvalidArgument("cannot update \"" + path + "\" of snapshot " + key
                            + ": only labels change");
                }
                String label = path.substring("labels.".length());
                if (labels.containsKey(label)) {
                    updated.put(label, labels.get(label));
                } else {
                    updated.remove(label);
                }
            }
        }
        Snapshot next = s.withLabels(updated, clock.instant());
        meta.put(next);
        meta.commit();
        return next;
    }

    /** The snapshots matching any of {@code filters} (containerd's filter syntax); all when there are none. */
    public synchronized List<Snapshot> list(List<String> filters) throws SnapshotException {
        List<SnapshotFilter> parsed = new ArrayList<>();
        for (String f : filters) {
            parsed.add(SnapshotFilter.parse(f));
        }
        return meta.all().stream().filter(s -> parsed.isEmpty() || parsed.stream().anyMatch(f -> f.matches(s))).toList();
    }

    /** What a snapshot holds: measured now for an active one, as committed for the others (0 for a remote layer). */
    public Usage usage(String key) throws SnapshotException, IOException {
        Snapshot s;
        synchronized (this) {
            s = require(key);
        }
        return s.kind() == Snapshot.Kind.ACTIVE ? measure(dir(s.id()).resolve("fs")) : new Usage(s.size(), s.inodes());
    }

    /**
     * Removes directories no snapshot owns (a crash between the metadata and the disk leaves them).
     * Under the lock throughout: a snapshot prepared meanwhile must not have its new directory taken
     * for an orphan.
     */
    public synchronized void cleanup() throws IOException {
        Set<String> owned = new HashSet<>();
        meta.all().forEach(s -> owned.add(Long.toString(s.id())));
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root.resolve("snapshots"))) {
            for (Path d : dirs) {
                if (!owned.contains(d.getFileName().toString())) {
                    remote.unmount(d.resolve("fs"));
                    deleteTree(d);
                    LOG.info("removed " + d + ", which no snapshot owns");
                }
            }
        }
    }

    /**
     * After a restart: every remote layer is mounted again from its persisted labels, each on its
     * own; one that cannot be now (registry down) is left to its first use, which tries again.
     * Directories no snapshot owns are removed.
     */
    public void restore(java.util.concurrent.Executor executor) throws IOException {
        cleanup();
        List<Snapshot> remotes;
        synchronized (this) {
            remotes = meta.all().stream().filter(Snapshot::isRemote).toList();
        }
        for (Snapshot s : remotes) {
            executor.execute(() -> {
                try {
                    Files.createDirectories(fs(s));
                    remote.check(fs(s), s.labels());
                } catch (IOException | RuntimeException e) {
                    LOG.warning("remote snapshot " + s.key() + " is not mounted again yet (" + e.getMessage()
                            + "); its first use tries again");
                }
            });
        }
    }

    /** Every snapshot, for status. */
    public synchronized List<Snapshot> all() {
        return meta.all();
    }

    private static Usage measure(Path dir) throws IOException {
        long[] totals = new long[2];
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return new Usage(0, 0);
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.forEach(p -> {
                totals[1]++;
                try {
                    if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                        totals[0] += Files.size(p);
                    }
                } catch (IOException e) {
                    // a file removed while measuring counts for nothing
                }
            });
        }
        return new Usage(totals[0], totals[1]);
    }

    /** Removes {@code dir} and what is in it; what someone else removed meanwhile (a Cleanup) is no failure. */
    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        List<Path> paths;
        try (Stream<Path> walk = Files.walk(dir)) {
            paths = walk.sorted(java.util.Comparator.reverseOrder()).toList();
        } catch (java.nio.file.NoSuchFileException | java.io.UncheckedIOException gone) {
            if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                throw gone instanceof IOException io ? io : ((java.io.UncheckedIOException) gone).getCause();
            }
            return;
        }
        for (Path p : paths) {
            try {
                Files.deleteIfExists(p);
            } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                throw new IOException("cannot remove " + p + ": " + e.getMessage(), e);
            }
        }
    }

    @Override
    public void close() {
        meta.close();
    }
}
