package dev.starling.concurrent;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * Answers kept for a while each, on an injected clock: a registry's "public" or "private", a failure
 * not to repeat at once. Bounded: past {@code capacity} keys it starts over, since whoever fills it
 * names keys faster than they expire (a peer naming new digests), and forgetting costs only a check
 * or a fetch done again.
 */
public final class Expiring<K, V> {
    private record Held<V>(V value, long until) {
    }

    private final int capacity;
    private final LongSupplier nanoTime;
    private final Map<K, Held<V>> held = new ConcurrentHashMap<>();

    public Expiring(int capacity, LongSupplier nanoTime) {
        this.capacity = capacity;
        this.nanoTime = nanoTime;
    }

    /** Keeps {@code value} for {@code key} for the next {@code forNanos}. */
    public void put(K key, V value, long forNanos) {
        if (held.size() >= capacity) {
            held.clear();
        }
        held.put(key, new Held<>(value, nanoTime.getAsLong() + forNanos));
    }

    /** The value kept for {@code key}, or null when there is none or its time is up. */
    public V get(K key) {
        Held<V> h = held.get(key);
        return h != null && nanoTime.getAsLong() - h.until() < 0 ? h.value() : null;
    }

    /** The last value kept for {@code key}, its time up or not (what stands while a fresh answer cannot be had), or null. */
    public V last(K key) {
        Held<V> h = held.get(key);
        return h == null ? null : h.value();
    }
}
