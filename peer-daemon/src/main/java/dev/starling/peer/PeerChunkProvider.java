package dev.starling.peer;

import dev.starling.concurrent.Expiring;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.InvalidBlobException;
import dev.starling.estargz.TocIndex;
import dev.starling.fetch.ChunkKey;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.Origin;
import dev.starling.fetch.RegistryOrigin;
import dev.starling.fetch.VerifiedBlob;
import dev.starling.protocol.ChunkProvider;
import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerException;
import dev.starling.protocol.PeerIdentity;
import dev.starling.registry.Digest;
import dev.starling.registry.ImageReference;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.function.Predicate;

/**
 * What this node serves its peers, and what a request may make it do. In order:
 * <ol>
 * <li>the requester may read the blob ({@link PeerAccess}), or it gets FORBIDDEN;</li>
 * <li>this node verified the blob's TOC itself, against the TOC digest the request names
 *     ({@link VerifiedTocs}: its open layers, a kept TOC, or the registry's), or it is refused;</li>
 * <li>every chunk asked for is one that TOC lists, at that place, of that size and digest, or the
 *     request is refused: sizes, spans and digests come from the TOC, never from the peer;</li>
 * <li>held chunks are served; missing ones are filled from the registry once (the node-wide single
 *     flight, within the node's bytes-in-flight budget), only from a registry this node fetches from
 *     for peers, never for a request that asks only for what is held, and a span that failed is not
 *     fetched again for a while.</li>
 * </ol>
 * So the registry bytes and memory a request can cost are what the verified TOC justifies, whoever sends it.
 */
public final class PeerChunkProvider implements ChunkProvider {
    /** Most compressed bytes one request may make this node fetch from the registry. */
    static final long MAX_FILL_SPAN = 64L << 20;
    /** How long a fill waits for this node's own fetches of the same members before fetching what is left. */
    static final long WAIT_FOR_OTHERS_MILLIS = 3_000;
    /** How long a span whose fill failed is answered FAILED without the registry being asked again. */
    static final long FAILED_FILL_REMEMBERED_NANOS = 30L * 1_000_000_000L;

    private final ChunkStore store;
    private final PeerAccess access;
    private final VerifiedTocs tocs;
    private final Predicate<String> allowedRegistry;
    private final Executor executor;
    /** Spans whose fill failed lately, by their first chunk: answered FAILED without the registry. */
    private final Expiring<ChunkKey, Boolean> failedFills;
    private final AtomicLong refused = new AtomicLong();
    private final AtomicLong forbidden = new AtomicLong();
    private final AtomicLong fillBytes = new AtomicLong();
    /** Who holds what this node sent, and whether a node id is a member now; null until {@link #withSwarm}. */
    private volatile SpanHolders holders;
    private volatile Predicate<String> isMember = id -> false;

    /**
     * @param openBlobs       the TOC and bytes of a blob open on this node, or null
     * @param fetchToc        a blob's TOC verified against a digest, kept or from the registry
     * @param allowedRegistry whether this node fetches from a registry host ({@code host[:port]}) for peers
     */
    public PeerChunkProvider(ChunkStore store, PeerAccess access, java.util.function.Function<Digest, VerifiedBlob> openBlobs,
                             TocFetcher fetchToc, Predicate<String> allowedRegistry, Executor executor, LongSupplier nanoTime) {
        this.store = store;
        this.access = access;
        this.tocs = new VerifiedTocs(openBlobs, fetchToc, nanoTime);
        this.allowedRegistry = allowedRegistry;
        this.executor = executor;
        this.failedFills = new Expiring<>(4096, nanoTime);
    }

    /**
     * Reads a blob's TOC for peers' requests (the caller compares its digest with what they name):
     * kept on disk, or from the registry when {@code registryAllowed}.
     */
    @FunctionalInterface
    public interface TocFetcher {
        VerifiedBlob fetch(ImageReference repository, Digest blob, boolean registryAllowed) throws IOException;
    }

    /**
     * Remembers which members this node sent whole spans to, and names them when its upload slots
     * are all taken; a node id that is not a member now is neither recorded nor named.
     */
    public PeerChunkProvider withSwarm(SpanHolders holders, Predicate<String> isMember) {
        this.holders = holders;
        this.isMember = isMember;
        return this;
    }

    @Override
    public List<String> holders(PeerIdentity from, Frame.Request request) {
        SpanHolders h = holders;
        if (h == null || request.chunks().isEmpty()) {
            return List.of();
        }
        return h.holders(request.locator().blobDigest(), request.chunks().getFirst().compressedOffset(), from.nodeId()).stream()
                .filter(isMember).toList();
    }

    @Override
    public void sent(PeerIdentity from, Frame.Request request) {
        SpanHolders h = holders;
        if (h != null && !request.chunks().isEmpty() && isMember.test(from.nodeId())) {
            h.held(request.locator().blobDigest(), request.chunks().getFirst().compressedOffset(), from.nodeId());
        }
    }

    @Override
    public CompletableFuture<List<byte[]>> serve(PeerIdentity from, Frame.Request request) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return answer(from, request);
            } catch (PeerException e) {
                throw new CompletionException(e);
            } catch (IOException | RuntimeException e) {
                throw new CompletionException(new PeerException.Refused("this node", Frame.ErrorCode.FAILED, e.getMessage()));
            }
        }, executor);
    }

    private static PeerException.Refused badRequest(String why) {
        return new PeerException.Refused("this node", Frame.ErrorCode.BAD_REQUEST, why);
    }

    private List<byte[]> answer(PeerIdentity from, Frame.Request request) throws IOException {
        Frame.Locator where = request.locator();
        ImageReference repository;
        Digest blob;
        try {
            repository = ImageReference.parse(where.registry() + "/" + where.repository());
            blob = Digest.parse(where.blobDigest());
            Digest.parse(where.tocDigest());
        } catch (IllegalArgumentException e) {
            throw badRequest(e.getMessage());
        }
        if (!repository.registry().equals(where.registry())) { // "docker.io" for an empty or odd host: not what was named
            throw badRequest("\"" + where.registry() + "\" is not a registry host");
        }
        if (!access.mayServe(from, where.registry(), where.repository(), blob.toString())) {
            forbidden.incrementAndGet();
            throw new PeerException.Refused("this node", Frame.ErrorCode.FORBIDDEN, access.mode() == PeerAccess.Mode.CLUSTER
                    ? "this node shares blobs only with peers that prove a cluster certificate (mutual TLS)"
                    : where.registry() + "/" + where.repository() + " does not give " + blob
                    + " to anyone, and this node shares only public blobs (--peer-access public)");
        }
        boolean registryAllowed = allowedRegistry.test(where.registry());
        VerifiedBlob toc;
        try {
            toc = tocs.get(repository, blob, where.tocDigest(), registryAllowed);
        } catch (PeerException.Refused r) {
            if (r.code() == Frame.ErrorCode.REGISTRY_NOT_ALLOWED) {
                refused.incrementAndGet();
            }
            throw r;
        }
        List<Chunk> chunks = listed(toc, request.chunks());
        List<byte[]> out = new ArrayList<>(chunks.size());
        List<Integer> missing = new ArrayList<>();
        for (int i = 0; i < chunks.size(); i++) {
            byte[] data = store.held(ChunkKey.of(blob, chunks.get(i).digest()));
            out.add(data);
            if (data == null) {
                missing.add(i);
            }
        }
        if (missing.isEmpty() || where.heldOnly()) {
            return out; // a hedge asks only for what is held: the rest are misses, never a second fill
        }
        if (!registryAllowed) {
            refused.incrementAndGet();
            if (missing.size() == out.size()) {
                throw new PeerException.Refused("this node", Frame.ErrorCode.REGISTRY_NOT_ALLOWED,
                        where.registry() + " is not a registry this node fetches from");
            }
            return out; // what it has; the rest are misses
        }
        fill(blob, toc, chunks, missing, out);
        return out;
    }

    /**
     * The TOC's chunks the request names, in its order; refused when one is not in the TOC as named
     * (place, end, size and digest must all match).
     */
    private static List<Chunk> listed(VerifiedBlob toc, List<Frame.ChunkRef> refs) throws PeerException {
        List<Chunk> chunks = new ArrayList<>(refs.size());
        for (int i = 0; i < refs.size(); i++) {
            Frame.ChunkRef ref = refs.get(i);
            Chunk c = toc.blob().index().chunkAt(ref.compressedOffset(), ref.innerOffset());
            if (c == null || c.digest() == null || c.compressedEnd() != ref.compressedEnd() || c.size() != ref.size()
                    || !Arrays.equals(c.digest(), ref.sha256())) {
                throw badRequest("chunk " + i + " (" + ref.size() + " bytes at " + ref.compressedOffset() + "+"
                        + ref.innerOffset() + ") is not one the blob's TOC lists");
            }
            chunks.add(c);
        }
        return chunks;
    }

    /**
     * Loads the missing chunks through the node's store: one Range request for the members they are
     * in (every chunk of those members, not only those asked for: small files share members, and a
     * sibling fetched later would cost the member's bytes again), each chunk verified against the TOC.
     */
    private void fill(Digest blob, VerifiedBlob toc, List<Chunk> chunks, List<Integer> missing, List<byte[]> out)
            throws IOException {
        long start = Long.MAX_VALUE, end = 0;
        for (int i : missing) {
            start = Math.min(start, chunks.get(i).compressedOffset());
            end = Math.max(end, chunks.get(i).compressedEnd());
        }
        if (end - start > MAX_FILL_SPAN) {
            throw badRequest("a span of " + (end - start) + " bytes, over the " + MAX_FILL_SPAN + "-byte limit");
        }
        ChunkKey spanKey = ChunkKey.of(blob, chunks.get(missing.getFirst()).digest());
        if (failedFills.get(spanKey) != null) {
            throw new PeerException.Refused("this node", Frame.ErrorCode.FAILED, "fetching this span from the registry "
                    + "failed less than " + FAILED_FILL_REMEMBERED_NANOS / 1_000_000_000L + " s ago");
        }
        TocIndex index = toc.blob().index();
        awaitOwnFetches(blob, index, start, end);
        List<Chunk> needed = new ArrayList<>();
        List<Integer> at = new ArrayList<>();
        for (int i : missing) {
            out.set(i, store.held(ChunkKey.of(blob, chunks.get(i).digest())));
            if (out.get(i) == null) {
                needed.add(chunks.get(i));
                at.add(i);
            }
        }
        if (needed.isEmpty()) {
            return;
        }
        IOException[] spanFailure = new IOException[1];
        long spanStart = start, spanEnd = end;
        ChunkStore.Fetch fetch = new ChunkStore.Fetch() {
            @Override
            public List<Chunk> span(List<Chunk> asked, Predicate<Chunk> wanted) {
                List<Chunk> span = new ArrayList<>();
                Set<ChunkKey> askedKeys = new HashSet<>();
                asked.forEach(c -> askedKeys.add(ChunkKey.of(blob, c.digest())));
                for (int c = index.firstChunkFrom(spanStart); c < index.chunkTotal(); c++) {
                    Chunk chunk = index.chunkAt(c);
                    if (chunk == null) {
                        continue;
                    }
                    if (chunk.compressedOffset() >= spanEnd) {
                        break;
                    }
                    if (chunk.digest() != null && chunk.compressedEnd() <= spanEnd
                            && (askedKeys.contains(ChunkKey.of(blob, chunk.digest())) || wanted.test(chunk))) {
                        span.add(chunk);
                    }
                }
                return span;
            }

            @Override
            public Origin origin() {
                // one Range request, its buffer within the node's in-flight budget
                return new RegistryOrigin(toc.remote(), new ChunkDecoder(toc.blob().footer().format()), store);
            }

            @Override
            public boolean keepInMemory() {
                return false; // for a peer: no reader of this node is about to take it
            }

            @Override
            public void fetched(Origin.Span span) {
                fillBytes.addAndGet(span.bytes());
            }

            @Override
            public IOException failed(List<Chunk> span, IOException cause) {
                if (!(cause instanceof InvalidBlobException)) { // the registry failed, not one chunk's bytes
                    spanFailure[0] = cause;
                }
                return cause;
            }
        };
        List<CompletableFuture<byte[]>> loaded = store.load(blob, needed, fetch);
        if (spanFailure[0] != null) {
            failedFills.put(spanKey, true, FAILED_FILL_REMEMBERED_NANOS);
            throw spanFailure[0];
        }
        for (int k = 0; k < loaded.size(); k++) {
            try {
                out.set(at.get(k), loaded.get(k).join()); // another's fetch of the same chunk is shared
            } catch (CompletionException | java.util.concurrent.CancellationException failed) {
                // a miss: the requester goes on without it
            }
        }
    }

    /**
     * Waits a while for this node's own fetches of members in {@code [start, end)}: a second request
     * for the rest of a member would fetch the member's bytes again.
     */
    private void awaitOwnFetches(Digest blob, TocIndex index, long start, long end) throws IOException {
        List<CompletableFuture<byte[]>> underWay = new ArrayList<>();
        for (int c = index.firstChunkFrom(start); c < index.chunkTotal(); c++) {
            Chunk chunk = index.chunkAt(c);
            if (chunk == null || chunk.digest() == null) {
                continue;
            }
            if (chunk.compressedOffset() >= end) {
                break;
            }
            CompletableFuture<byte[]> f = store.fetching(ChunkKey.of(blob, chunk.digest()));
            if (f != null) {
                underWay.add(f);
            }
        }
        if (underWay.isEmpty()) {
            return;
        }
        try {
            CompletableFuture.allOf(underWay.toArray(CompletableFuture[]::new)).get(WAIT_FOR_OTHERS_MILLIS,
                    java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException failedOrSlow) {
            // what is still missing is fetched by the caller
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted waiting for a fetch under way");
        }
    }

    /** Requests refused for naming a registry outside the allowlist. */
    public long refused() {
        return refused.get();
    }

    /** Requests refused because the requester may not read the blob here. */
    public long forbidden() {
        return forbidden.get();
    }

    /** Compressed bytes fetched from the registry on peers' behalf. */
    public long fillBytes() {
        return fillBytes.get();
    }
}
