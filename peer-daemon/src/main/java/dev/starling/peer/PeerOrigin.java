package dev.starling.peer;

import dev.starling.discovery.Member;
import dev.starling.discovery.Membership;
import dev.starling.discovery.Placement;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.VerificationException;
import dev.starling.fetch.Origin;
import dev.starling.protocol.Frame;
import dev.starling.protocol.FrameCodec;
import dev.starling.protocol.PeerException;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;

/**
 * A layer's chunks from the owners of their span first, the registry last: the span's owner by
 * rendezvous placement, then the next owner, then {@code registry}. An owner that has not answered
 * within the hedge delay is not waited for alone: the next owner is asked too for what it holds
 * (never to fill from the registry), and the first complete verified answer is used. When this node is the owner it
 * goes to the registry itself, so each span leaves the registry about once for the cluster; when the
 * registry is down, the other members are asked, since any node serves the spans it holds. Every
 * chunk a peer sends is verified against this node's TOC; a peer that sends one bad chunk, or breaks
 * the protocol, is quarantined and the read goes on from the next source. A dead, slow, busy or
 * refusing peer costs one timeout at most, never a failed read, and is counted ({@link PeerFallbacks}).
 * Peers are asked only about blobs {@link PeerAccess} lets this node name to them.
 */
public final class PeerOrigin implements Origin {
    private static final Logger LOG = Logger.getLogger(PeerOrigin.class.getName());
    /** Owners asked before the registry: the owner, and the next one. */
    static final int OWNERS_TRIED = 2;
    /** Where a BUSY owner's holders are asked: off the connections' event loops, which must not block. */
    private static final java.util.concurrent.Executor SWARM = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();

    /**
     * What every layer's peer origin on a node shares.
     *
     * @param fetchUnit  the span placement hashes: its owner fetches it from the registry in one request
     * @param timeout    how long a peer may take to answer before the next source is asked
     * @param hedgeAfter how long the owner may take before the next owner is asked as well (for what
     *                   it holds; the first verified answer is used); at most {@code timeout}
     */
    public record Peers(Membership membership, PeerConnections connections, Quarantine quarantine, PeerAccess access,
                        PeerFallbacks fallbacks, long fetchUnit, Duration timeout, Duration hedgeAfter) {
        public Peers {
            hedgeAfter = hedgeAfter.compareTo(timeout) > 0 ? timeout : hedgeAfter;
        }
    }

    private final Frame.Locator where;
    private final Peers node;
    private final Origin registry;
    /** Whether peers may be asked about this blob (and so learn of it); null until first needed. */
    private volatile Boolean shared;
    /** A peer said this node may not read the blob from it: the others will say the same. */
    private volatile boolean forbidden;

    /**
     * @param where    the blob, as a peer needs it to verify its TOC and fetch from the registry itself (offsets are per request)
     * @param registry where to go when no peer answers
     */
    public PeerOrigin(Frame.Locator where, Peers node, Origin registry) {
        this.where = where;
        this.node = node;
        this.registry = registry;
    }

    /**
     * Whether peers may be asked about this blob: a private blob is never named to them (with
     * --peer-access public), so a stranger among the members learns nothing of it. Asked of the
     * registry once per layer; call it at open so the answer is there before the registry may go away.
     */
    public boolean shared() {
        Boolean s = shared;
        if (s == null) {
            s = node.access().mayAsk(where.registry(), where.repository(), where.blobDigest());
            shared = s;
            if (!s) {
                node.fallbacks().record("(all peers)", PeerFallbacks.Reason.PRIVATE, where.registry() + "/" + where.repository()
                        + "@" + where.blobDigest() + " is not public: its chunks come from the registry, with this node's credentials");
            }
        }
        return s;
    }

    /**
     * The chunks, each from the owners of the placement span its member starts in: a run of small
     * files that crosses a span boundary is asked of both spans' owners, so every chunk has one
     * owner to fill it from the registry, and a run read from different starting points by different
     * nodes is still filled once.
     */
    @Override
    public Span fetch(List<Chunk> chunks) throws IOException {
        long unit = node.fetchUnit();
        long firstSpan = Placement.span(chunks.getFirst().compressedOffset(), unit);
        if (Placement.span(chunks.getLast().compressedOffset(), unit) == firstSpan) {
            return fetchSpan(chunks);
        }
        List<Fetched> out = new ArrayList<>(chunks.size());
        long bytes = 0, peerBytes = 0;
        int requests = 0;
        for (int from = 0; from < chunks.size(); ) {
            long span = Placement.span(chunks.get(from).compressedOffset(), unit);
            int to = from;
            while (to < chunks.size() && Placement.span(chunks.get(to).compressedOffset(), unit) == span) {
                to++;
            }
            Span part = fetchSpan(chunks.subList(from, to));
            out.addAll(part.chunks());
            bytes += part.bytes();
            requests += part.requests();
            peerBytes += part.peerBytes();
            from = to;
        }
        return new Span(out, bytes, requests, peerBytes);
    }

    /** Chunks of one placement span, from its owners first. */
    private Span fetchSpan(List<Chunk> chunks) throws IOException {
        Chunk first = chunks.getFirst();
        long span = Placement.span(first.compressedOffset(), node.fetchUnit());
        Member self = node.membership().self();
        List<Member> owners = Placement.owners(where.blobDigest(), span, node.membership().members(), self.zone());
        if (owners.size() == 1 || forbidden || !shared()) { // alone, or a blob peers do not share
            return registry.fetch(chunks);
        }
        IOException registryDown = null;
        int asked = 0;
        java.util.Set<String> hedged = new java.util.HashSet<>();
        for (Member peer : owners) {
            if (peer.nodeId().equals(self.nodeId()) || asked == OWNERS_TRIED && registryDown == null) {
                // the owner (or a node whose owners did not answer) fetches from the registry itself;
                // when the registry is down, the other members may still hold the span
                if (registryDown == null) {
                    try {
                        return registry.fetch(chunks);
                    } catch (IOException e) {
                        registryDown = e;
                    }
                }
                if (peer.nodeId().equals(self.nodeId())) {
                    continue;
                }
            }
            if (node.quarantine().isQuarantined(peer.nodeId()) || hedged.contains(peer.nodeId())) {
                continue;
            }
            asked++;
            Member next = asked < OWNERS_TRIED ? nextPeer(owners, peer, self) : null;
            try {
                Span got = ask(peer, next, chunks, hedged);
                if (got != null) {
                    return got;
                }
            } catch (IOException partly) { // it had some, and the registry was needed for the rest
                registryDown = registryDown == null ? partly : registryDown;
            }
            if (next != null && hedged.contains(next.nodeId())) {
                asked++; // asked alongside this one: not again on its own
            }
        }
        if (registryDown != null) {
            throw registryDown;
        }
        return registry.fetch(chunks);
    }

    /**
     * The peer after {@code peer} in the owners' order that a hedge asks (for what it holds): not this
     * node, not quarantined; or null.
     */
    private Member nextPeer(List<Member> owners, Member peer, Member self) {
        boolean after = false;
        for (Member m : owners) {
            if (after && !m.nodeId().equals(self.nodeId()) && !node.quarantine().isQuarantined(m.nodeId())) {
                return m;
            }
            after |= m.nodeId().equals(peer.nodeId());
        }
        return null;
    }

    /**
     * The chunks from {@code peer}, or from {@code next} (may be null) when {@code peer} has not
     * answered within the hedge delay and {@code next} answers first with verified chunks; null to
     * try the next source. The chunks a peer misses come from the registry.
     */
    private Span ask(Member peer, Member next, List<Chunk> chunks, java.util.Set<String> hedged) throws IOException {
        List<Frame.ChunkRef> refs = new ArrayList<>(chunks.size());
        for (Chunk c : chunks) {
            refs.add(new Frame.ChunkRef(c.compressedOffset(), c.compressedEnd(), (int) c.innerOffset(), (int) c.size(),
                    c.digest()));
        }
        long start = chunks.getFirst().compressedOffset();
        long end = chunks.stream().mapToLong(Chunk::compressedEnd).max().orElseThrow();
        Frame.Locator locator = where.span(start, (int) (end - start));
        Duration hedgeAfter = node.hedgeAfter();
        // the client fails a request when its peer goes silent for the timeout; one that keeps sending is
        // waited for, up to the client's cap: a saturated peer makes a read slower, never fail
        long deadline = System.nanoTime() + dev.starling.protocol.PeerClient.PROGRESS_CAP.toNanos() + TimeUnit.SECONDS.toNanos(1);
        // who sent the owner's answer: the owner, or a holder it named when it was busy
        java.util.concurrent.atomic.AtomicReference<Member> servedBy = new java.util.concurrent.atomic.AtomicReference<>(peer);
        SwarmWait swarm = new SwarmWait(node.membership().self().nodeId(), peer.nodeId(),
                id -> !node.quarantine().isQuarantined(id) && member(id) != null, System::nanoTime,
                SwarmWait.PATIENCE.toNanos());
        java.util.concurrent.CompletableFuture<List<byte[]>> first = fromOwnerOrHolders(peer, locator, refs, servedBy, swarm);
        List<byte[]> answers = await(peer, first, Math.min(hedgeAfter.toNanos(), deadline - System.nanoTime()));
        if (answers != null) {
            return acceptFromOwner(peer, servedBy, chunks, answers);
        }
        if (first.isCompletedExceptionally()) {
            return null; // it failed, and its failure is counted: not waited for (nor counted) again
        }
        if (next == null) { // no other peer to race: the owner may be filling from the registry; wait for it
            answers = await(peer, first, deadline - System.nanoTime());
            if (answers == null && !first.isDone()) {
                first.cancel(true);
                node.fallbacks().record(peer.nodeId(), PeerFallbacks.Reason.TIMEOUT, "no answer within "
                        + dev.starling.protocol.PeerClient.PROGRESS_CAP.toSeconds() + " s");
            }
            return answers == null ? null : acceptFromOwner(peer, servedBy, chunks, answers);
        }
        LOG.fine("peer " + peer.nodeId() + " has not answered in " + hedgeAfter.toMillis() + " ms; asking " + next.nodeId() + " too");
        // the hedge asks for what the next owner holds, never for a fill: a slow owner is usually
        // filling this very span from the registry, and a second fill would double the egress
        java.util.concurrent.CompletableFuture<List<byte[]>> second = request(next, locator.askingHeldOnly(), refs);
        hedged.add(next.nodeId());
        java.util.Map<java.util.concurrent.CompletableFuture<List<byte[]>>, Member> pending = new java.util.LinkedHashMap<>();
        if (!first.isCompletedExceptionally()) { // it answered nothing yet; a failed one has nothing more to say
            pending.put(first, peer);
        }
        pending.put(second, next);
        while (!pending.isEmpty() && System.nanoTime() < deadline) {
            try {
                java.util.concurrent.CompletableFuture.anyOf(pending.keySet().toArray(java.util.concurrent.CompletableFuture[]::new))
                        .get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (ExecutionException failed) {
                // one of them failed: looked at below
            } catch (TimeoutException e) {
                break;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted waiting for peers");
            }
            for (var it = pending.entrySet().iterator(); it.hasNext(); ) {
                var e = it.next();
                if (!e.getKey().isDone()) {
                    continue;
                }
                it.remove();
                List<byte[]> got = await(e.getValue(), e.getKey(), 0);
                if (got != null && e.getKey() == second && got.stream().anyMatch(java.util.Objects::isNull)) {
                    continue; // the next owner lacks some: wait for the owner, which fetches them once for all
                }
                Span span = got == null ? null : e.getKey() == first ? acceptFromOwner(peer, servedBy, chunks, got)
                        : accept(e.getValue(), chunks, got);
                if (span != null) {
                    pending.keySet().forEach(f -> f.cancel(true)); // the slower answer is not needed
                    return span;
                }
            }
        }
        pending.keySet().forEach(f -> f.cancel(true));
        node.fallbacks().record(peer.nodeId(), PeerFallbacks.Reason.TIMEOUT, "no complete answer within "
                + dev.starling.protocol.PeerClient.PROGRESS_CAP.toSeconds() + " s");
        return null;
    }

    /**
     * The owner's answer; when the owner is BUSY (every upload slot taken), the answer of one of the
     * holders it names (asked for what they hold), else the owner's again after its retry-after, as
     * {@link SwarmWait} decides: a hot span reaches this node through the nodes that have it, and
     * only an owner busy for good sends it to the next source.
     */
    private java.util.concurrent.CompletableFuture<List<byte[]>> fromOwnerOrHolders(Member owner, Frame.Locator locator,
            List<Frame.ChunkRef> refs, java.util.concurrent.atomic.AtomicReference<Member> servedBy, SwarmWait swarm)
            throws IOException {
        return request(owner, locator, refs).exceptionallyComposeAsync(failure -> {
            Throwable cause = failure instanceof java.util.concurrent.CompletionException c && c.getCause() != null
                    ? c.getCause() : failure;
            if (!(cause instanceof PeerException.Busy busy)) {
                return java.util.concurrent.CompletableFuture.failedFuture(cause);
            }
            swarm.ownerBusy(busy.holders());
            List<byte[]> held = fromHolders(swarm, locator.askingHeldOnly(), refs, servedBy);
            if (held != null) {
                return java.util.concurrent.CompletableFuture.completedFuture(held);
            }
            long wait = swarm.retryOwnerAfterMillis(busy.retryAfterMillis());
            if (wait < 0) {
                return java.util.concurrent.CompletableFuture.failedFuture(cause); // over its rate, or busy for good: the next source
            }
            java.util.concurrent.Executor later = java.util.concurrent.CompletableFuture.delayedExecutor(wait, TimeUnit.MILLISECONDS, SWARM);
            return java.util.concurrent.CompletableFuture.supplyAsync(() -> null, later).thenCompose(nothing -> {
                try {
                    return fromOwnerOrHolders(owner, locator, refs, servedBy, swarm);
                } catch (IOException e) {
                    return java.util.concurrent.CompletableFuture.failedFuture(e);
                }
            });
        }, SWARM);
    }

    /**
     * The complete answer of the first holder of this round of {@code swarm} that has every chunk,
     * its sender set in {@code servedBy}; null when none has them all. A busy holder's own holders
     * join the round. The answer is verified where every answer is ({@link #accept}), which
     * quarantines a holder that lies.
     */
    private List<byte[]> fromHolders(SwarmWait swarm, Frame.Locator heldOnly, List<Frame.ChunkRef> refs,
                                     java.util.concurrent.atomic.AtomicReference<Member> servedBy) {
        for (String id; (id = swarm.nextHolder()) != null; ) {
            Member holder = member(id);
            if (holder == null) {
                continue; // not a member (any more): a name is only a hint
            }
            try {
                List<byte[]> got = request(holder, heldOnly, refs).get(node.timeout().toMillis(), TimeUnit.MILLISECONDS);
                if (got.size() != refs.size() || got.stream().anyMatch(java.util.Objects::isNull)) {
                    continue; // it has not got them all (yet): the next one, or the owner again
                }
                servedBy.set(holder);
                return got;
            } catch (ExecutionException e) {
                Throwable cause = e.getCause() instanceof java.util.concurrent.CompletionException c && c.getCause() != null
                        ? c.getCause() : e.getCause();
                if (cause instanceof PeerException.Busy busy) {
                    swarm.named(busy.holders()); // its slots are full too: those it sent the span to
                }
            } catch (TimeoutException | IOException e) {
                // gone or slow: the next one
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }

    /** The member with this id now, or null. */
    private Member member(String nodeId) {
        for (Member m : node.membership().members()) {
            if (m.nodeId().equals(nodeId)) {
                return m;
            }
        }
        return null;
    }

    /** {@link #accept} of the owner's answer, from whoever sent it; a holder's verified answer counts as the swarm's. */
    private Span acceptFromOwner(Member owner, java.util.concurrent.atomic.AtomicReference<Member> servedBy, List<Chunk> chunks,
                                 List<byte[]> answers) throws IOException {
        Member from = servedBy.get();
        Span span = accept(from, chunks, answers);
        if (span != null && from != owner) {
            node.fallbacks().servedBySwarm();
        }
        return span;
    }

    /**
     * Asks {@code peer} for {@code refs}, in as many requests as the protocol's chunk limit needs (a
     * span of small files holds thousands of chunks); the answers come back as one list.
     */
    private java.util.concurrent.CompletableFuture<List<byte[]>> request(Member peer, Frame.Locator locator,
                                                                          List<Frame.ChunkRef> refs) throws IOException {
        try {
            dev.starling.protocol.PeerClient client = node.connections().get(peer);
            if (refs.size() <= FrameCodec.MAX_CHUNKS) {
                return client.request(locator, refs, node.timeout());
            }
            List<java.util.concurrent.CompletableFuture<List<byte[]>>> parts = new ArrayList<>();
            for (int from = 0; from < refs.size(); from += FrameCodec.MAX_CHUNKS) {
                parts.add(client.request(locator, refs.subList(from, Math.min(refs.size(), from + FrameCodec.MAX_CHUNKS)),
                        node.timeout()));
            }
            return java.util.concurrent.CompletableFuture.allOf(parts.toArray(java.util.concurrent.CompletableFuture[]::new))
                    .thenApply(done -> {
                        List<byte[]> all = new ArrayList<>(refs.size());
                        parts.forEach(p -> all.addAll(p.join()));
                        return all;
                    });
        } catch (PeerException e) {
            return java.util.concurrent.CompletableFuture.failedFuture(e);
        }
    }

    /**
     * The answer of {@code peer} within {@code nanos}, or null when it failed or is not there yet. A
     * failure is counted as a fallback; one that breaks the protocol quarantines the peer, and one
     * that says this node may not read the blob stops peers being asked for it.
     */
    private List<byte[]> await(Member peer, java.util.concurrent.CompletableFuture<List<byte[]>> answer, long nanos)
            throws IOException {
        try {
            return answer.get(Math.max(0, nanos), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() instanceof java.util.concurrent.CompletionException c && c.getCause() != null
                    ? c.getCause() : e.getCause();
            PeerFallbacks.Reason reason = PeerFallbacks.reasonOf(cause);
            node.fallbacks().record(peer.nodeId(), reason, String.valueOf(cause.getMessage()));
            if (reason == PeerFallbacks.Reason.VIOLATION) {
                node.quarantine().quarantine(peer.nodeId(), cause.getMessage());
            } else if (reason == PeerFallbacks.Reason.FORBIDDEN) {
                forbidden = true;
            }
            return null;
        } catch (java.util.concurrent.CancellationException e) {
            return null;
        } catch (TimeoutException notYet) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted waiting for peer " + peer.nodeId());
        }
    }

    /** {@code answers} verified chunk by chunk (a lying peer is quarantined: null), the missing ones from the registry. */
    private Span accept(Member peer, List<Chunk> chunks, List<byte[]> answers) throws IOException {
        List<Fetched> out = new ArrayList<>(chunks.size());
        List<Chunk> missing = new ArrayList<>();
        long fromPeer = 0;
        for (int i = 0; i < chunks.size(); i++) {
            byte[] data = i < answers.size() ? answers.get(i) : null;
            if (data == null) {
                missing.add(chunks.get(i));
                out.add(null);
                continue;
            }
            try {
                ChunkDecoder.verify(chunks.get(i), data);
            } catch (VerificationException bad) {
                node.quarantine().quarantine(peer.nodeId(), bad.getMessage());
                node.fallbacks().record(peer.nodeId(), PeerFallbacks.Reason.VIOLATION, bad.getMessage());
                return null; // nothing of a lying peer is used
            }
            out.add(Fetched.of(data));
            fromPeer += data.length;
        }
        if (missing.isEmpty()) {
            return new Span(out, 0, 0, fromPeer);
        }
        node.fallbacks().record(peer.nodeId(), PeerFallbacks.Reason.MISS, missing.size() + " of " + chunks.size()
                + " chunks missed (the peer has not got them and would not fetch them)");
        Span rest = registry.fetch(missing);
        for (int i = 0, m = 0; i < out.size(); i++) {
            if (out.get(i) == null) {
                out.set(i, rest.chunks().get(m++));
            }
        }
        return new Span(out, rest.bytes(), rest.requests(), fromPeer + rest.peerBytes());
    }
}
