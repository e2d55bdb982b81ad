package dev.starling.fuse;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The layers the store holds open, apart from FUSE: each opened once however many threads look it
 * up at once, counted by users ({@code use}) and open files, and released {@code ttl} after it was
 * last used once it has neither ({@link #sweep}, on the injected clock).
 */
final class HeldLayers {
    private static final Logger LOG = Logger.getLogger(HeldLayers.class.getName());

    record Id(String ref, String key) {
    }

    /** An open layer: what the store serves, its tree's file system, and its slot (the high half of its inode numbers). */
    record Opened(ServedLayer layer, LayerFileSystem fs, long slot) {
    }

    /** Why a layer cannot be had. */
    static final class Unavailable extends Exception {
        enum Why { NOT_FOUND, INVALID, FAILED }

        final Why why;

        Unavailable(Why why, String message) {
            super(message, null, false, false);
            this.why = why;
        }
    }

    /** Opens a layer for the store. */
    @FunctionalInterface
    interface Opener {
        Opened open(Id id, long slot) throws IOException;
    }

    private static final class Entry {
        final CompletableFuture<Opened> opened = new CompletableFuture<>();
        final long slot;
        int users;
        int openFiles;
        volatile long lastUsed;

        Entry(long slot, long now) {
            this.slot = slot;
            this.lastUsed = now;
        }

        boolean isOpen() {
            return opened.isDone() && !opened.isCompletedExceptionally();
        }
    }

    private final Opener opener;
    private final long ttlNanos;
    private final LongSupplier nanoTime;
    private final Map<Id, Entry> entries = new ConcurrentHashMap<>();
    private final AtomicLong nextSlot = new AtomicLong(1);

    HeldLayers(Opener opener, Duration ttl, LongSupplier nanoTime) {
        this.opener = opener;
        this.ttlNanos = ttl.toNanos();
        this.nanoTime = nanoTime;
    }

    /** The layer, opened now by the first to look it up (a failed open is tried again by the next). */
    Opened open(Id id) throws Unavailable {
        long now = nanoTime.getAsLong();
        boolean[] first = new boolean[1];
        Entry entry = entries.computeIfAbsent(id, k -> {
            first[0] = true;
            return new Entry(nextSlot.getAndIncrement(), now);
        });
        entry.lastUsed = now;
        if (first[0]) {
            try {
                entry.opened.complete(opener.open(id, entry.slot));
                LOG.info("the store serves layer " + id.key() + " of " + id.ref());
            } catch (Throwable t) {
                entries.remove(id, entry);
                entry.opened.completeExceptionally(t);
            }
        }
        try {
            return entry.opened.join();
        } catch (CompletionException e) {
            Throwable cause = e.getCause();
            String what = "layer " + id.key() + " of " + id.ref();
            if (cause instanceof NoSuchFileException) {
                LOG.fine("no " + what + " in the store: " + cause.getMessage());
                throw new Unavailable(Unavailable.Why.NOT_FOUND, cause.getMessage());
            }
            if (cause instanceof IllegalArgumentException) {
                LOG.info(what + ": " + cause.getMessage());
                throw new Unavailable(Unavailable.Why.INVALID, cause.getMessage());
            }
            if (first[0]) {
                LOG.log(Level.WARNING, "cannot open " + what + " (answering EIO): " + cause, cause instanceof IOException ? null : cause);
            }
            throw new Unavailable(Unavailable.Why.FAILED, String.valueOf(cause));
        }
    }

    /** The layer if it is open now, else null (nothing opened it, or it was released). */
    Opened ifOpen(Id id) {
        Entry e = entries.get(id);
        return e != null && e.isOpen() ? e.opened.join() : null;
    }

    void countOpen(Id id, int delta) {
        Entry e = entries.get(id);
        if (e != null) {
            synchronized (e) {
                e.openFiles = Math.max(0, e.openFiles + delta);
            }
            e.lastUsed = nanoTime.getAsLong();
        }
    }

    /** Counts a user of an open layer ({@code use} created); false when it is not open. */
    boolean addUser(Id id) {
        Entry e = entries.get(id);
        if (e == null || !e.isOpen()) {
            return false;
        }
        synchronized (e) {
            e.users++;
        }
        return true;
    }

    /** Lets one user of an open layer go; false when it is not open. */
    boolean dropUser(Id id) {
        Entry e = entries.get(id);
        if (e == null || !e.isOpen()) {
            return false;
        }
        synchronized (e) {
            e.users = Math.max(0, e.users - 1);
        }
        e.lastUsed = nanoTime.getAsLong();
        return true;
    }

    /** The ids of the open layers. */
    List<Id> ids() {
        List<Id> out = new ArrayList<>();
        entries.forEach((id, e) -> {
            if (e.isOpen()) {
                out.add(id);
            }
        });
        return out;
    }

    /**
     * Releases the layers no one has used for the TTL: no users, no open files, last looked up
     * longer ago. Returns how many were released.
     */
    int sweep() {
        long now = nanoTime.getAsLong();
        int released = 0;
        for (Map.Entry<Id, Entry> item : entries.entrySet()) {
            Entry e = item.getValue();
            if (!e.opened.isDone()) {
                continue;
            }
            boolean idle;
            synchronized (e) {
                idle = e.users == 0 && e.openFiles == 0 && now - e.lastUsed >= ttlNanos;
            }
            if (idle && entries.remove(item.getKey(), e)) {
                release(item.getKey(), e);
                released++;
            }
        }
        return released;
    }

    /** The layers held now. */
    List<HeldLayer> held() {
        List<HeldLayer> out = new ArrayList<>();
        entries.forEach((id, e) -> {
            if (e.isOpen()) {
                synchronized (e) {
                    out.add(new HeldLayer(id.ref(), id.key(), e.users, e.openFiles));
                }
            }
        });
        return out;
    }

    /** Releases every layer (the store is being unmounted). */
    void releaseAll() {
        for (Map.Entry<Id, Entry> item : entries.entrySet()) {
            if (entries.remove(item.getKey(), item.getValue())) {
                release(item.getKey(), item.getValue());
            }
        }
    }

    private static void release(Id id, Entry e) {
        Opened o = e.opened.getNow(null);
        if (o == null) {
            return;
        }
        try {
            o.layer().release().run();
            LOG.info("the store released layer " + id.key() + " of " + id.ref());
        } catch (RuntimeException ex) {
            LOG.warning("releasing layer " + id.key() + " of " + id.ref() + ": " + ex);
        }
    }
}
