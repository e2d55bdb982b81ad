package dev.starling.concurrent;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * "The first caller does the work, the others wait for it", per key: the chunk a node loads, the
 * layer it opens, the TOC it reads for a peer. A key is running from a successful {@link #claim}
 * until its claimant calls {@link #done}; a later claim after that starts the work again (a failure
 * is not remembered here: callers that must not retry at once keep their own record of it).
 */
public final class SingleFlight<K, V> {
    private final ConcurrentHashMap<K, CompletableFuture<V>> running = new ConcurrentHashMap<>();

    /**
     * {@code mine} when no one runs {@code key}: the caller now does the work, completes
     * {@code mine} and then calls {@link #done}. Otherwise the future of whoever runs it.
     */
    public CompletableFuture<V> claim(K key, CompletableFuture<V> mine) {
        CompletableFuture<V> theirs = running.putIfAbsent(key, mine);
        return theirs != null ? theirs : mine;
    }

    /** The future of whoever runs {@code key} now, or null. */
    public CompletableFuture<V> running(K key) {
        return running.get(key);
    }

    /** Ends the claim that returned {@code mine}; a stale claimant cannot end a newer one. */
    public void done(K key, CompletableFuture<V> mine) {
        running.remove(key, mine);
    }

    /** How many keys run now. */
    public int size() {
        return running.size();
    }
}
