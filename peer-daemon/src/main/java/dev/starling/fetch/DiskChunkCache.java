package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.VerificationException;
import dev.starling.registry.Digest;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The disk tier: verified chunks stored under their {@link ChunkKey}
 * ({@code <dir>/<blob hex>/<chunk hex>}: a chunk serves only the layer whose blob holds it), written
 * to a temporary file and renamed so a crash never leaves half a chunk, bounded in bytes with
 * least-recently-used eviction, and found again after a restart. Chunks of mounted layers
 * ({@link #retain}) are evicted only when nothing else is left to evict: a node should not fetch
 * again what its running containers use; when they are evicted all the same (the bound is smaller
 * than the mounted layers) they are gone like any other: what a layer holds is always asked of this
 * tier, never mirrored. Bytes read back are verified once per process (a disk can rot or be tampered
 * with; a bad file is deleted and fetched anew): a chunk this process wrote from verified bytes, or
 * already hashed, is afterwards only checked for its length (the reference never hashes its cache at
 * all). A failed write (a full disk) is logged and the read is still served.
 */
public final class DiskChunkCache {
    private static final Logger LOG = Logger.getLogger(DiskChunkCache.class.getName());
    private static final Pattern BLOB_DIR = Pattern.compile("[a-f0-9]{64}|[a-f0-9]{128}");
    private static final Pattern CHUNK_FILE = Pattern.compile("[a-f0-9]{64}");
    /** The default bound is this share of the space the file system has for the cache. */
    static final double DEFAULT_SHARE_OF_DISK = 0.5;

    private final Path dir;
    /** Chunks read back from disk that did not hash to their digest (rot, tampering), dropped and fetched again. */
    private final java.util.concurrent.atomic.AtomicLong verificationFailures = new java.util.concurrent.atomic.AtomicLong();
    private final long maxBytes;
    /** Chunks no mounted layer uses, in access order (eldest first): evicted first. */
    private final LinkedHashMap<ChunkKey, Long> loose = new LinkedHashMap<>(16, 0.75f, true);
    /** The same, for chunks of mounted layers. */
    private final LinkedHashMap<ChunkKey, Long> retained = new LinkedHashMap<>(16, 0.75f, true);
    /** How many mounted layers use a chunk. */
    private final Map<ChunkKey, int[]> retainCounts = new HashMap<>();
    /** Bytes the distinct chunks of the mounted layers take: what the bound must leave room for. */
    private long retainedDemand;
    /** Chunks this process wrote from verified bytes or hashed since: loaded again, only their length is checked. */
    private final java.util.Set<ChunkKey> verified = new java.util.HashSet<>();
    private long totalBytes;
    private long hits;
    private long writeFailures;

    public DiskChunkCache(Path dir, long maxBytes) throws IOException {
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("the disk cache size must be positive, not " + maxBytes);
        }
        this.dir = OwnerOnly.directories(dir);
        this.maxBytes = maxBytes;
        recover();
    }

    /**
     * The default bound for a cache at {@code dir}: half of what its file system has room for (free
     * space plus what the cache holds already). The images this tool is for are many GB, and a
     * fixed default either fills a small disk or starves a large one.
     */
    /** Chunks read back that did not verify, since start. */
    public long verificationFailures() {
        return verificationFailures.get();
    }

    public static long defaultSize(Path dir) throws IOException {
        Path existing = dir.toAbsolutePath();
        while (!Files.exists(existing)) {
            existing = existing.getParent();
        }
        long held = 0;
        if (Files.isDirectory(dir)) {
            try (Stream<Path> files = Files.walk(dir, 2)) {
                for (Path p : files.filter(Files::isRegularFile).toList()) {
                    held += Files.size(p);
                }
            }
        }
        long usable = Files.getFileStore(existing).getUsableSpace();
        return Math.max(1L << 20, (long) ((usable + held) * DEFAULT_SHARE_OF_DISK));
    }

    /** Rebuilds the index from the files there (oldest first), dropping leftovers of interrupted writes. */
    private void recover() throws IOException {
        record Found(ChunkKey key, long size, long mtime) {
        }
        List<Found> found = new ArrayList<>();
        int foreign = 0;
        try (Stream<Path> files = Files.walk(dir, 2)) {
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                String name = p.getFileName().toString();
                String parent = p.getParent().equals(dir) ? "" : p.getParent().getFileName().toString();
                if (BLOB_DIR.matcher(parent).matches() && CHUNK_FILE.matcher(name).matches()) {
                    found.add(new Found(ChunkKey.parse(parent, name), Files.size(p), Files.getLastModifiedTime(p).toMillis()));
                } else {
                    // interrupted writes, and chunks of the old layout keyed by chunk digest alone, which
                    // say nothing of the blob that holds them
                    Files.deleteIfExists(p);
                    foreign += name.startsWith(".tmp-") ? 0 : 1;
                }
            }
        }
        if (foreign > 0) {
            LOG.info("dropped " + foreign + " file(s) in " + dir + " that are not chunks of a known blob");
        }
        found.sort(Comparator.comparingLong(Found::mtime));
        synchronized (this) {
            for (Found f : found) {
                loose.put(f.key(), f.size());
                totalBytes += f.size();
            }
        }
        evict();
    }

    private Path path(ChunkKey key) {
        return dir.resolve(key.blob().hex()).resolve(key.chunkHex());
    }

    /** Whether the chunk is stored (not read, not verified: for deciding what to fetch). */
    public synchronized boolean contains(ChunkKey key) {
        return loose.containsKey(key) || retained.containsKey(key);
    }

    /** The chunk's verified bytes, or null when it is not stored (or was damaged, and is now dropped). */
    public byte[] get(ChunkKey key, Chunk chunk) throws IOException {
        return get(key, chunk.describe());
    }

    /** The same, for a chunk known only by its key (a peer asking for it). */
    public byte[] get(ChunkKey key) throws IOException {
        return get(key, "chunk " + key);
    }

    /**
     * Copies part of a chunk this process verified (see the class comment) straight from its file
     * into {@code into}, moving its position on: no copy of the chunk on the heap. False when it is
     * not stored, not verified yet, or its file is not as long as the chunk (the caller then loads
     * it, which verifies it or drops a damaged file).
     */
    public boolean copyIfVerified(ChunkKey key, Chunk chunk, int offset, int length, java.nio.ByteBuffer into) {
        synchronized (this) {
            if (sizeOf(key) == null || !verified.contains(key)) {
                return false;
            }
        }
        try (java.nio.channels.FileChannel file = java.nio.channels.FileChannel.open(path(key))) {
            if (file.size() != chunk.size()) {
                return false;
            }
            java.nio.ByteBuffer target = into.slice(into.position(), length);
            while (target.hasRemaining()) {
                if (file.read(target, offset + target.position()) < 0) {
                    return false;
                }
            }
            into.position(into.position() + length);
            synchronized (this) {
                hits++;
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** The stored size of a chunk, marking it recently used; null when it is not stored. */
    private Long sizeOf(ChunkKey key) {
        Long size = loose.get(key);
        return size != null ? size : retained.get(key);
    }

    private byte[] get(ChunkKey key, String what) throws IOException {
        Long stored;
        boolean knownGood;
        synchronized (this) {
            stored = sizeOf(key);
            knownGood = verified.contains(key);
        }
        if (stored == null) {
            return null;
        }
        Path file = path(key);
        try {
            byte[] data = Files.readAllBytes(file);
            if (knownGood ? data.length != stored : !key.matches(data)) {
                throw new VerificationException(what + " on disk " + (knownGood ? "is " + data.length
                        + " bytes, not the " + stored + " it was written with" : "does not hash to its digest"));
            }
            synchronized (this) {
                hits++;
                if (loose.containsKey(key) || retained.containsKey(key)) {
                    verified.add(key);
                }
            }
            Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis())); // LRU order after a restart
            return data;
        } catch (IOException damaged) {
            if (damaged instanceof VerificationException) {
                verificationFailures.incrementAndGet();
            }
            LOG.log(Level.WARNING, "cached " + what + " is unreadable or damaged; fetching it again: "
                    + damaged.getMessage());
            forget(key);
            return null;
        }
    }

    /** Stores verified bytes; false when that failed (a full disk), which is logged and counted, never thrown. */
    public boolean put(ChunkKey key, byte[] data) {
        Path file = path(key);
        Path tmp = null;
        try {
            OwnerOnly.created(file.getParent());
            tmp = Files.createTempFile(file.getParent(), ".tmp-", ""); // 0600
            Files.write(tmp, data);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
            synchronized (this) {
                Long previous = retainCounts.containsKey(key) ? retained.put(key, (long) data.length)
                        : loose.put(key, (long) data.length);
                totalBytes += data.length - (previous == null ? 0 : previous);
                verified.add(key);
            }
            evict();
            return contains(key);
        } catch (IOException e) {
            synchronized (this) {
                writeFailures++;
            }
            LOG.log(Level.WARNING, "cannot write chunk " + key + " to the disk cache (" + e.getMessage()
                    + "); serving it without caching");
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // a leftover temp file is removed at the next start
                }
            }
            return false;
        }
    }

    /**
     * Keeps the chunks of a mounted layer in preference to all others until the returned handle is
     * closed (at unmount). Layers sharing a blob each hold its chunks.
     */
    public Closeable retain(Digest blob, TocIndex layer) throws VerificationException {
        Map<ChunkKey, Long> keys = new LinkedHashMap<>();
        for (int i = 0; i < layer.chunkTotal(); i++) {
            Chunk c = layer.chunkAt(i);
            if (c != null && c.digest() != null) {
                keys.put(ChunkKey.of(blob, c), c.size());
            }
        }
        synchronized (this) {
            keys.forEach((key, size) -> {
                if (++retainCounts.computeIfAbsent(key, k -> new int[1])[0] == 1) {
                    retainedDemand += size;
                    Long held = loose.remove(key);
                    if (held != null) {
                        retained.put(key, held);
                    }
                }
            });
        }
        return () -> {
            synchronized (DiskChunkCache.this) {
                for (Map.Entry<ChunkKey, Long> e : keys.entrySet()) {
                    ChunkKey key = e.getKey();
                    int[] count = retainCounts.get(key);
                    if (--count[0] == 0) {
                        retainCounts.remove(key);
                        retainedDemand -= e.getValue(); // a chunk digest fixes its size: every layer holding it says the same
                        Long size = retained.remove(key);
                        if (size != null) {
                            loose.put(key, size);
                        }
                    }
                }
            }
        };
    }

    /** Whether the bound leaves room for every chunk of the mounted layers; if not, fetching them all would only evict them again. */
    public synchronized boolean canHoldMountedLayers() {
        return retainedDemand <= maxBytes;
    }

    /** Bytes the mounted layers' chunks take when all are here. */
    public synchronized long mountedLayersBytes() {
        return retainedDemand;
    }

    public long maxBytes() {
        return maxBytes;
    }

    private void forget(ChunkKey key) throws IOException {
        synchronized (this) {
            Long size = loose.remove(key);
            if (size == null) {
                size = retained.remove(key);
            }
            totalBytes -= size == null ? 0 : size;
            verified.remove(key);
        }
        Files.deleteIfExists(path(key));
    }

    private void evict() throws IOException {
        while (true) {
            ChunkKey victim;
            synchronized (this) {
                if (totalBytes <= maxBytes) {
                    return;
                }
                LinkedHashMap<ChunkKey, Long> from = !loose.isEmpty() ? loose : retained;
                if (from.isEmpty()) {
                    return;
                }
                Iterator<Map.Entry<ChunkKey, Long>> eldest = from.entrySet().iterator();
                Map.Entry<ChunkKey, Long> e = eldest.next();
                victim = e.getKey();
                totalBytes -= e.getValue();
                eldest.remove();
                verified.remove(victim);
            }
            Files.deleteIfExists(path(victim));
        }
    }

    public synchronized long bytes() {
        return totalBytes;
    }

    public synchronized int chunks() {
        return loose.size() + retained.size();
    }

    public synchronized long hits() {
        return hits;
    }

    public synchronized long writeFailures() {
        return writeFailures;
    }
}
