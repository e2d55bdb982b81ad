package dev.starling.peer;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.Footer;
import dev.starling.fetch.ChunkKey;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.Origin;
import dev.starling.fetch.RegistryOrigin;
import dev.starling.protocol.ChunkProvider;
import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerException;
import dev.starling.registry.Digest;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * What this node serves its peers. A chunk it holds is served when the request names a blob this
 * node verified (it opened that layer against a manifest's TOC digest, or filled that blob itself);
 * a chunk it lacks it fetches from the registry once (the node-wide single flight, so every waiter
 * shares one request) with its own credentials, but only from a registry its configuration allows:
 * never a host a peer names. Filled chunks are verified against the digests in the request before
 * they are stored or sent, so the disk tier only ever holds bytes that really are in their blob.
 */
public final class PeerChunkProvider implements ChunkProvider {
    /** Most compressed bytes one request may make this node fetch from the registry. */
    static final long MAX_FILL_SPAN = 64L << 20;

    private final ChunkStore store;
    private final Predicate<Digest> verifiedBlob;
    private final RegistryClient registry;
    private final Predicate<String> allowedRegistry;
    private final Executor executor;
    /** Blobs this node filled for peers: their chunks may be served like those of open layers. */
    private final Set<Digest> filled = ConcurrentHashMap.newKeySet();
    private final AtomicLong refused = new AtomicLong();
    private final AtomicLong fillBytes = new AtomicLong();

    /**
     * @param verifiedBlob whether this node verified a blob's TOC against a manifest (its open layers)
     * @param allowedRegistry whether this node fetches from a registry host ({@code host[:port]}) for peers
     */
    public PeerChunkProvider(ChunkStore store, Predicate<Digest> verifiedBlob, RegistryClient registry,
                             Predicate<String> allowedRegistry, Executor executor) {
        this.store = store;
        this.verifiedBlob = verifiedBlob;
        this.registry = registry;
        this.allowedRegistry = allowedRegistry;
        this.executor = executor;
    }

    @Override
    public CompletableFuture<List<byte[]>> serve(Frame.Request request) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return answer(request);
            } catch (PeerException e) {
                throw new java.util.concurrent.CompletionException(e);
            } catch (IOException | RuntimeException e) {
                throw new java.util.concurrent.CompletionException(new PeerException.Refused("this node",
                        Frame.ErrorCode.FAILED, e.getMessage()));
            }
        }, executor);
    }

    private List<byte[]> answer(Frame.Request request) throws IOException {
        Frame.Locator where = request.locator();
        Digest blob;
        try {
            blob = Digest.parse(where.blobDigest());
        } catch (IllegalArgumentException e) {
            throw new PeerException.Refused("this node", Frame.ErrorCode.BAD_REQUEST, e.getMessage());
        }
        boolean mayServe = verifiedBlob.test(blob) || filled.contains(blob);
        List<byte[]> out = new ArrayList<>(request.chunks().size());
        List<Integer> missing = new ArrayList<>();
        for (int i = 0; i < request.chunks().size(); i++) {
            byte[] data = mayServe ? store.lookup(ChunkKey.of(blob, request.chunks().get(i).sha256())) : null;
            out.add(data);
            if (data == null) {
                missing.add(i);
            }
        }
        if (missing.isEmpty() || where.registry().isEmpty()) {
            return out; // no registry named: a hedged request, for what this node holds (the rest are misses)
        }
        if (!allowedRegistry.test(where.registry())) {
            refused.incrementAndGet();
            if (missing.size() == out.size()) {
                throw new PeerException.Refused("this node", Frame.ErrorCode.REGISTRY_NOT_ALLOWED,
                        where.registry() + " is not a registry this node fetches from");
            }
            return out; // what it has; the rest are misses
        }
        fill(request, blob, missing, out);
        return out;
    }

    /** Fetches the missing chunks' span from the registry once, verifies each against the request, stores and returns them. */
    private void fill(Frame.Request request, Digest blob, List<Integer> missing, List<byte[]> out) throws IOException {
        List<Frame.ChunkRef> refs = request.chunks();
        long start = Long.MAX_VALUE, end = 0;
        for (int i : missing) {
            start = Math.min(start, refs.get(i).compressedOffset());
            end = Math.max(end, refs.get(i).compressedEnd());
        }
        if (end - start > MAX_FILL_SPAN) {
            throw new PeerException.Refused("this node", Frame.ErrorCode.BAD_REQUEST, "a span of " + (end - start)
                    + " bytes, over the " + MAX_FILL_SPAN + "-byte limit");
        }
        List<ChunkKey> keys = new ArrayList<>();
        List<CompletableFuture<byte[]>> mine = new ArrayList<>();
        List<Integer> toFetch = new ArrayList<>();
        for (int i : missing) {
            ChunkKey key = ChunkKey.of(blob, refs.get(i).sha256());
            CompletableFuture<byte[]> f = new CompletableFuture<>();
            CompletableFuture<byte[]> claimed = store.claim(key, f);
            if (claimed == f) {
                keys.add(key);
                mine.add(f);
                toFetch.add(i);
            } else {
                out.set(i, claimed.join()); // another fetch of the same chunk: share it
            }
        }
        try {
            if (!toFetch.isEmpty()) {
                ImageReference repo = ImageReference.parse(request.locator().registry() + "/" + request.locator().repository());
                byte[] span = registry.readBlob(repo, blob.toString(), start, (int) (end - start));
                fillBytes.addAndGet(span.length);
                ChunkDecoder decoder = new ChunkDecoder(request.locator().zstd() ? Footer.Format.ZSTD_CHUNKED : Footer.Format.ESTARGZ);
                List<Chunk> chunks = new ArrayList<>(toFetch.size());
                for (int i : toFetch) {
                    Frame.ChunkRef ref = refs.get(i);
                    chunks.add(new Chunk(null, 0, ref.size(), ref.compressedOffset(), ref.innerOffset(),
                            ref.compressedEnd(), ref.sha256(), i));
                }
                List<Origin.Fetched> decoded = RegistryOrigin.decode(decoder, chunks, start, span);
                for (int k = 0; k < toFetch.size(); k++) {
                    Origin.Fetched f = decoded.get(k);
                    if (f.failure() != null) {
                        mine.get(k).completeExceptionally(f.failure()); // a miss: the requester verifies and falls back
                        continue;
                    }
                    mine.get(k).complete(f.data());
                    store.disk().put(keys.get(k), f.data());
                    out.set(toFetch.get(k), f.data());
                }
                filled.add(blob);
            }
        } catch (IOException | RuntimeException e) {
            mine.forEach(f -> f.completeExceptionally(e));
            throw e;
        } finally {
            for (int k = 0; k < keys.size(); k++) {
                store.done(keys.get(k), mine.get(k));
            }
        }
    }

    /** Requests refused for naming a registry outside the allowlist. */
    public long refused() {
        return refused.get();
    }

    /** Compressed bytes fetched from the registry on peers' behalf. */
    public long fillBytes() {
        return fillBytes.get();
    }
}
