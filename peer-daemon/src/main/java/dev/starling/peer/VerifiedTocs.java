package dev.starling.peer;

import dev.starling.concurrent.Expiring;
import dev.starling.concurrent.SingleFlight;
import dev.starling.fetch.VerifiedBlob;
import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerException;
import dev.starling.registry.Digest;
import dev.starling.registry.ImageReference;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * The TOCs of blobs this node serves peers from, per blob: what it serves and fills for a peer is
 * only what the blob's TOC lists, and only when that TOC is the one the peer names (the digest the
 * peer verified against its manifest). A blob open here has its TOC already; another one's TOC is
 * read once (kept on disk, or fetched from the registry with this node's credentials when the
 * registry is one it fetches from for peers), and kept among the last {@link #CAPACITY}. Whatever
 * TOC digests requests name, a blob's TOC is fetched at most once while kept, and a blob whose TOC
 * could not be read is refused at once for a while.
 */
final class VerifiedTocs {
    /** TOCs of blobs not open here kept at once: a few layers being filled for peers. */
    static final int CAPACITY = 16;
    /** How long a blob whose TOC could not be read is refused without asking the registry again. */
    static final long FAILURE_REMEMBERED_NANOS = 60L * 1_000_000_000L;

    private record Failure(String why, boolean registryAllowed) {
    }

    private final Function<Digest, VerifiedBlob> open;
    private final PeerChunkProvider.TocFetcher fetcher;
    private final Map<Digest, VerifiedBlob> kept = new LinkedHashMap<>(CAPACITY, 0.75f, true);
    private final SingleFlight<Digest, VerifiedBlob> fetching = new SingleFlight<>();
    private final Expiring<Digest, Failure> failed;

    VerifiedTocs(Function<Digest, VerifiedBlob> open, PeerChunkProvider.TocFetcher fetcher, LongSupplier nanoTime) {
        this.open = open;
        this.fetcher = fetcher;

        this.failed = new Expiring<>(4096, nanoTime);
    }

    /**
     * {@code blob}'s TOC when it is the one {@code tocDigest} names; refused ({@link PeerException.Refused})
     * when this node cannot read the blob's TOC, or read another.
     */
    VerifiedBlob get(ImageReference repository, Digest blob, String tocDigest, boolean registryAllowed) throws IOException {
        VerifiedBlob v = find(repository, blob, registryAllowed);
        if (!v.blob().tocDigest().equals(tocDigest)) {
            throw new PeerException.Refused("this node", Frame.ErrorCode.BAD_REQUEST, "cannot verify the TOC " + tocDigest
                    + " of " + blob + ": its TOC is another");
        }
        return v;
    }

    private VerifiedBlob find(ImageReference repository, Digest blob, boolean registryAllowed) throws IOException {
        VerifiedBlob openHere = open.apply(blob);
        if (openHere != null) {
            return openHere;
        }
        synchronized (this) {
            VerifiedBlob v = kept.get(blob);
            if (v != null) {
                return v;
            }
        }
        Failure f = failed.get(blob);
        if (f != null && f.registryAllowed() == registryAllowed) {
            throw refusal(f.why() + " (remembered)", registryAllowed);
        }
        CompletableFuture<VerifiedBlob> mine = new CompletableFuture<>();
        CompletableFuture<VerifiedBlob> flight = fetching.claim(blob, mine);
        if (flight == mine) {
            try {
                VerifiedBlob v = fetcher.fetch(repository, blob, registryAllowed);
                synchronized (this) {
                    kept.put(blob, v);
                    if (kept.size() > CAPACITY) {
                        kept.remove(kept.keySet().iterator().next());
                    }
                }
                flight.complete(v);
            } catch (IOException | RuntimeException e) {
                String why = "cannot verify the TOC of " + blob + ": " + e.getMessage();
                failed.put(blob, new Failure(why, registryAllowed), FAILURE_REMEMBERED_NANOS);
                flight.completeExceptionally(refusal(why, registryAllowed));
            } finally {
                fetching.done(blob, mine);
            }
        }
        try {
            return flight.join();
        } catch (java.util.concurrent.CompletionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }

    private static PeerException.Refused refusal(String why, boolean registryAllowed) {
        return new PeerException.Refused("this node", registryAllowed ? Frame.ErrorCode.BAD_REQUEST
                : Frame.ErrorCode.REGISTRY_NOT_ALLOWED, why);
    }
}
