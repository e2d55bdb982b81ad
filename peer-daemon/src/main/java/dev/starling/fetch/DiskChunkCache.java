package dev.starling.fetch;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.VerificationException;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * The disk tier: verified chunks stored under their digest ({@code <dir>/ab/abcdef…}), written to a
 * temporary file and renamed so a crash never leaves half a chunk, bounded in bytes with
 * least-recently-used eviction, and found again after a restart. Bytes read back are verified again
 * (a disk can rot or be tampered with; a bad file is deleted and fetched anew). A failed write (a
 * full disk) is logged and the read is still served from the next tier.
 */
public final class DiskChunkCache {
    private static final Logger LOG = Logger.getLogger(DiskChunkCache.class.getName());
    private static final HexFormat HEX = HexFormat.of();

    private final Path dir;
    private final long maxBytes;
    /** Digest hex -> size, in access order (eldest first). */
    private final LinkedHashMap<String, Long> entries = new LinkedHashMap<>(16, 0.75f, true);
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
        try (Stream<Path> files = Files.walk(dir, 2)) {
            var chunks = files.filter(Files::isRegularFile).toList();
            record Found(Path path, long size, long mtime) {
            }
            var found = new java.util.ArrayList<Found>();
            for (Path p : chunks) {
                String name = p.getFileName().toString();
                if (name.startsWith(".tmp-")) {
                    Files.deleteIfExists(p);
                } else if (name.length() == 64) {
                    found.add(new Found(p, Files.size(p), Files.getLastModifiedTime(p).toMillis()));
                }
            }
            found.sort(java.util.Comparator.comparingLong(Found::mtime));
            for (Found f : found) {
                entries.put(f.path().getFileName().toString(), f.size());
                totalBytes += f.size();
            }
        }
        evict();
    }

    private Path path(String hex) {
        return dir.resolve(hex.substring(0, 2)).resolve(hex);
    }

    /** This tier in front of {@code origin}: one shared, content-addressed store for every layer. */
    public ChunkSource over(ChunkSource origin) {
        return chunk -> read(chunk, origin);
    }

    public byte[] read(Chunk chunk, ChunkSource origin) throws IOException {
        if (chunk.digest() == null) {
            throw new VerificationException(chunk.describe() + " has no digest in the TOC, so it cannot be verified");
        }
        String hex = HEX.formatHex(chunk.digest());
        Path file = path(hex);
        boolean known;
        synchronized (this) {
            known = entries.get(hex) != null;
        }
        if (known) {
            try {
                byte[] data = Files.readAllBytes(file);
                ChunkDecoder.verify(chunk, data);
                synchronized (this) {
                    hits++;
                }
                Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis()));
                return data;
            } catch (IOException damaged) {
                LOG.log(Level.WARNING, "cached " + chunk.describe() + " is unreadable or damaged; fetching it again: "
                        + damaged.getMessage());
                forget(hex);
            }
        }
        byte[] data = origin.read(chunk);
        store(hex, data);
        return data;
    }

    private void store(String hex, byte[] data) {
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
                Long previous = entries.put(hex, (long) data.length);
                totalBytes += data.length - (previous == null ? 0 : previous);
            }
            evict();
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
        }
    }

    private void forget(String hex) throws IOException {
        synchronized (this) {
            Long size = entries.remove(hex);
            totalBytes -= size == null ? 0 : size;
        }
        Files.deleteIfExists(path(hex));
    }

    private void evict() throws IOException {
        while (true) {
            String victim;
            synchronized (this) {
                if (totalBytes <= maxBytes || entries.isEmpty()) {
                    return;
                }
                Iterator<Map.Entry<String, Long>> eldest = entries.entrySet().iterator();
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
        return entries.size();
    }

    public synchronized long hits() {
        return hits;
    }

    public synchronized long writeFailures() {
        return writeFailures;
    }
}
