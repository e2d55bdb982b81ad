package dev.starling.snapshot;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;

/**
 * The snapshotter's metadata in H2's MVStore: snapshots by key, and the next directory id. Every
 * change is one {@link #commit}: the file holds either the state before it or after it, never a
 * mix, whatever kills the process (MVStore writes a new version and then switches to it).
 */
final class MetaStore implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final MVStore store;
    private final MVMap<String, String> snapshots;
    private final MVMap<String, Long> counters;

    MetaStore(Path file) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        try {
            this.store = new MVStore.Builder().fileName(file.toString()).autoCommitDisabled().open();
        } catch (RuntimeException e) {
            throw new IOException("cannot open the snapshot metadata " + file + ": " + e.getMessage(), e);
        }
        this.snapshots = store.openMap("snapshots");
        this.counters = store.openMap("counters");
    }

    synchronized Snapshot get(String key) {
        String json = snapshots.get(key);
        return json == null ? null : decode(json);
    }

    synchronized List<Snapshot> all() {
        List<Snapshot> out = new ArrayList<>();
        snapshots.values().forEach(v -> out.add(decode(v)));
        return out;
    }

    synchronized long nextId() {
        long id = counters.getOrDefault("id", 0L) + 1;
        counters.put("id", id);
        return id;
    }

    synchronized void put(Snapshot s) {
        snapshots.put(s.key(), encode(s));
    }

    synchronized void remove(String key) {
        snapshots.remove(key);
    }

    /** Makes every change since the last commit durable, at once. */
    synchronized void commit() {
        store.commit();
        store.sync();
    }

    /** Forgets every change since the last commit (a failed operation leaves nothing behind). */
    synchronized void rollback() {
        store.rollback();
    }

    private static String encode(Snapshot s) {
        ObjectNode o = JSON.createObjectNode();
        o.put("key", s.key()).put("id", s.id()).put("kind", s.kind().name()).put("parent", s.parent())
                .put("created", s.created().toString()).put("updated", s.updated().toString())
                .put("size", s.size()).put("inodes", s.inodes());
        ObjectNode labels = o.putObject("labels");
        s.labels().forEach(labels::put);
        return o.toString();
    }

    private static Snapshot decode(String json) {
        try {
            JsonNode o = JSON.readTree(json);
            Map<String, String> labels = new TreeMap<>();
            o.path("labels").properties().forEach(e -> labels.put(e.getKey(), e.getValue().asText()));
            return new Snapshot(o.path("key").asText(), o.path("id").asLong(), Snapshot.Kind.valueOf(o.path("kind").asText()),
                    o.path("parent").asText(), labels, Instant.parse(o.path("created").asText()),
                    Instant.parse(o.path("updated").asText()), o.path("size").asLong(), o.path("inodes").asLong());
        } catch (IOException e) {
            throw new UncheckedIOException("snapshot metadata that this store wrote does not parse", e);
        }
    }

    @Override
    public synchronized void close() {
        store.close();
    }
}
