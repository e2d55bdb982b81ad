package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.VerificationException;
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
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * The disk tier: verified chunks stored under their digest ({@code <dir>/ab/abcdef…}), written to a
 * temporary file and renamed so a crash never leaves half a chunk, bounded in bytes with
 * least-recently-used eviction, and found again after a restart. Chunks of mounted layers
 * ({@link #retain}) are evicted only when nothing else is left to evict: a node should not fetch
 * again what its running containers use. Bytes read back are verified again (a disk can rot or be
 * tampered with; a bad file is deleted and fetched anew). A failed write (a full disk) is logged and
 * the read is still served.
 */
public final class DiskChunkCache {
    private static final Logger LOG = Logger.getLogger(DiskChunkCache.class.getName());
    private static final HexFormat HEX = HexFormat.of();

    private final Path dir;
    private final long maxBytes;
    /** Digest hex -> size, in access order (eldest first): chunks no mounted layer uses, evicted first. */
    private final LinkedHashMap<String, Long> loose = new LinkedHashMap<>(16, 0.75f, true);
    /** The same, for chunks of mounted layers. */
    private final LinkedHashMap<String, Long> retained = new LinkedHashMap<>(16, 0.75f, true);
    /** Digest hex -> how many mounted layers use it. */
    private final Map<String, Integer> retainCounts = new HashMap<>();
    private long totalBytes;
    private long hits;
    private long writeFailures;

    public DiskChunkCache(Path dir, long maxBytes) throws IOException {
        this.dir = Files.createDirectories(dir);
        this.maxBytes = maxBytes;
        recover();
    }

    /** Rebuilds the index from the files there (oldest first), dropping leftovers of interrupted writes. */
    private void recover() throws IOException {
        record Found(String hex, long size, long mtime) {
        }
        List<Found> found = new ArrayList<>();
        try (Stream<Path> files = Files.walk(dir, 2)) {
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                String name = p.getFileName().toString();
                if (name.startsWith(".tmp-")) {
                    Files.deleteIfExists(p);
                } else if (name.length() == 64) {
                    found.add(new Found(name, Files.size(p), Files.getLastModifiedTime(p).toMillis()));
                }
            }
        }
        found.sort(Comparator.comparingLong(Found::mtime));
        synchronized (this) {
            for (Found f : found) {
                loose.put(f.hex(), f.size());
                totalBytes += f.size();
            }
        }
        evict();
    }

    private Path path(String hex) {
        return dir.resolve(hex.substring(0, 2)).resolve(hex);
    }

    private static String hex(Chunk chunk) throws VerificationException {
        if (chunk.digest() == null) {
            throw new VerificationException(chunk.describe() + " has no digest in the TOC, so it cannot be verified");
        }
        return HEX.formatHex(chunk.digest());
    }

    /** Whether the chunk is stored (not read, not verified: for deciding what to fetch). */
    public synchronized boolean contains(Chunk chunk) throws VerificationException {
        String hex = hex(chunk);
        return loose.containsKey(hex) || retained.containsKey(hex);
    }

    /** The chunk's verified bytes, or null when it is not stored (or was damaged, and is now dropped). */
    public byte[] get(Chunk chunk) throws IOException {
        String hex = hex(chunk);
        synchronized (this) {
            if (loose.get(hex) == null && retained.get(hex) == null) { // get() also marks it recently used
                return null;
            }
        }
        Path file = path(hex);
        try {
            byte[] data = Files.readAllBytes(file);
            ChunkDecoder.verify(chunk, data);
            synchronized (this) {
                hits++;
            }
            Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis())); // LRU order after a restart
            return data;
        } catch (IOException damaged) {
            LOG.log(Level.WARNING, "cached " + chunk.describe() + " is unreadable or damaged; fetching it again: "
                    + damaged.getMessage());
            forget(hex);
            return null;
        }
    }

    /** Stores verified bytes; false when that failed (a full disk), which is logged and counted, never thrown. */
    public boolean put(Chunk chunk, byte[] data) throws VerificationException {
        String hex = hex(chunk);
        Path file = path(hex);
        Path tmp = null;
        try {
            Files.createDirectories(file.getParent());
            tmp = Files.createTempFile(file.getParent(), ".tmp-", "");
            Files.write(tmp, data);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
            synchronized (this) {
                Long previous = retainCounts.containsKey(hex) ? retained.put(hex, (long) data.length)
                        : loose.put(hex, (long) data.length);
                totalBytes += data.length - (previous == null ? 0 : previous);
            }
            evict();
            return true;
        } catch (IOException e) {
            synchronized (this) {
                writeFailures++;
            }
            LOG.log(Level.WARNING, "cannot write chunk " + hex + " to the disk cache (" + e.getMessage()
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

    /** Get, or load from {@code origin} and store. */
    public byte[] read(Chunk chunk, ChunkSource origin) throws IOException {
        byte[] data = get(chunk);
        if (data == null) {
            data = origin.read(chunk);
            put(chunk, data);
        }
        return data;
    }

    /**
     * Keeps the chunks of a mounted layer in preference to all others until the returned handle is
     * closed (at unmount). Layers sharing a chunk each hold it.
     */
    public Closeable retain(TocIndex layer) {
        List<String> digests = new ArrayList<>();
        for (int i = 0; i < layer.chunkTotal(); i++) {
            Chunk c = layer.chunkAt(i);
            if (c != null && c.digest() != null) {
                digests.add(HEX.formatHex(c.digest()));
            }
        }
        synchronized (this) {
            for (String hex : digests) {
                if (retainCounts.merge(hex, 1, Integer::sum) == 1) {
                    Long size = loose.remove(hex);
                    if (size != null) {
                        retained.put(hex, size);
                    }
                }
            }
        }
        return () -> {
            synchronized (DiskChunkCache.this) {
                for (String hex : digests) {
                    if (retainCounts.merge(hex, -1, Integer::sum) == 0) {
                        retainCounts.remove(hex);
                        Long size = retained.remove(hex);
                        if (size != null) {
                            loose.put(hex, size);
                        }
                    }
                }
            }
        };
    }

    private void forget(String hex) throws IOException {
        synchronized (this) {
            Long size = loose.remove(hex);
            if (size == null) {
                size = retained.remove(hex);
            }
            totalBytes -= size == null ? 0 : size;
        }
        Files.deleteIfExists(path(hex));
    }

    private void evict() throws IOException {
        while (true) {
            String victim;
            synchronized (this) {
                if (totalBytes <= maxBytes) {
                    return;
                }
                LinkedHashMap<String, Long> from = !loose.isEmpty() ? loose : retained;
                if (from.isEmpty()) {
                    return;
                }
                Iterator<Map.Entry<String, Long>> eldest = from.entrySet().iterator();
                Map.Entry<String, Long> e = eldest.next();
                victim = e.getKey();
                totalBytes -= e.getValue();
                eldest.remove();
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
