package dev.starling.peer;

import dev.starling.concurrent.Expiring;
import dev.starling.protocol.PeerIdentity;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Who may read which blob over the peer port, on both ends of it (docs/operations.md, "The peer
 * port: who may read what"). Integrity needs no trust (every chunk is verified against the TOC);
 * confidentiality does, and a peer's word is not evidence. Two policies:
 * <ul>
 * <li>{@link Mode#PUBLIC} (the default): a blob is shared between peers only when the registry
 *     gives it to anyone: this node asks, with no credentials, whether the repository serves that
 *     blob. A private image's chunks never cross the peer port, neither served nor asked for (so a
 *     stranger in the membership learns nothing of it); those layers read from the registry with
 *     the node's own credentials.</li>
 * <li>{@link Mode#CLUSTER}: every node that proves with mutual TLS that it holds a certificate of
 *     the cluster CA may read every blob any node of the cluster can, as with one pull secret for
 *     all nodes (Spegel's and Kraken's model). Needs TLS; a plain connection gets nothing.</li>
 * </ul>
 * The registry's answers are kept a while per repository and blob (time injected), so the check
 * costs one HEAD per layer, not one per request.
 */
public final class PeerAccess {
    private static final Logger LOG = Logger.getLogger(PeerAccess.class.getName());
    /** How long a "public" answer stands: a repository made private is honoured within this. */
    static final long PUBLIC_FOR_NANOS = 10L * 60 * 1_000_000_000L;
    /** How long a "private" or failed answer stands before the registry is asked again. */
    static final long PRIVATE_FOR_NANOS = 60L * 1_000_000_000L;

    public enum Mode {
        PUBLIC, CLUSTER;

        public static Mode parse(String s) {
            try {
                return valueOf(s.strip().toUpperCase(java.util.Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--peer-access is public or cluster, not \"" + s + "\"");
            }
        }
    }

    /**
     * Whether the registry gives a blob to anyone: a HEAD of it without credentials. False for a
     * definite no (401, 403, 404); an exception when the registry could not say (down, 5xx).
     */
    @FunctionalInterface
    public interface AnonymousCheck {
        boolean readable(String registry, String repository, String blobDigest) throws java.io.IOException;
    }

    private record Key(String registry, String repository, String blob) {
    }

    private final Mode mode;
    private final AnonymousCheck anonymous;
    private final LongSupplier nanoTime;
    /** The registry's answers; more blobs than any node reads in a while start it over. */
    private final Expiring<Key, Boolean> answers;
    /**
     * Registry checks per second at most: a cluster reads a handful of blobs, so the answers kept
     * serve nearly every request; a peer naming new blob digests on every request must not turn each
     * into a request to the registry. Past it a blob counts as private until a check is free.
     */
    static final int CHECKS_PER_SECOND = 20;
    private double checkTokens = CHECKS_PER_SECOND;
    private long checksRefilled;

    public PeerAccess(Mode mode, AnonymousCheck anonymous, LongSupplier nanoTime) {
        this.mode = mode;
        this.anonymous = anonymous;
        this.nanoTime = nanoTime;
        this.answers = new Expiring<>(65_536, nanoTime);
        this.checksRefilled = nanoTime.getAsLong();
    }

    public Mode mode() {
        return mode;
    }

    /** Whether this node may ask peers for chunks of this blob (and so name it to them). */
    public boolean mayAsk(String registry, String repository, String blobDigest) {
        return mode == Mode.CLUSTER || isPublic(registry, repository, blobDigest);
    }

    /** Whether {@code peer} may be served (or filled) chunks of this blob by this node. */
    public boolean mayServe(PeerIdentity peer, String registry, String repository, String blobDigest) {
        return mode == Mode.CLUSTER ? peer.authenticated() : isPublic(registry, repository, blobDigest);
    }

    /** Whether the registry serves this blob of this repository without credentials; asked at most once a while. */
    boolean isPublic(String registry, String repository, String blobDigest) {
        Key key = new Key(registry, repository, blobDigest);
        Boolean fresh = answers.get(key);
        if (fresh != null) {
            return fresh;
        }
        boolean lastAnswer = Boolean.TRUE.equals(answers.last(key));
        if (!takeCheck(nanoTime.getAsLong())) {
            return lastAnswer;
        }
        boolean readable;
        try {
            readable = anonymous.readable(registry, repository, blobDigest);
        } catch (java.io.IOException | RuntimeException e) {
            // the registry could not say: the last answer stands a while (a registry outage must not
            // stop peers sharing a public image, which is when they matter most); none is "private"
            readable = lastAnswer;
            LOG.fine("asking " + registry + " whether " + repository + "@" + blobDigest + " is public: " + e
                    + "; taken as " + (readable ? "public (as last answered)" : "private"));
        }
        answers.put(key, readable, readable ? PUBLIC_FOR_NANOS : PRIVATE_FOR_NANOS);
        return readable;
    }

    private synchronized boolean takeCheck(long now) {
        checkTokens = Math.min(CHECKS_PER_SECOND, checkTokens + (now - checksRefilled) / 1e9 * CHECKS_PER_SECOND);
        checksRefilled = now;
        if (checkTokens < 1) {
            return false;
        }
        checkTokens -= 1;
        return true;
    }
}
