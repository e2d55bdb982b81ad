package dev.starling.peer;

import dev.starling.discovery.Member;
import dev.starling.discovery.Membership;
import dev.starling.discovery.Placement;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.VerificationException;
import dev.starling.fetch.Origin;
import dev.starling.protocol.Frame;
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
 * rendezvous placement, then the next owner, then {@code registry}. When this node is the owner it
 * goes to the registry itself, so each span leaves the registry about once for the cluster; when the
 * registry is down, the other members are asked, since any node serves the spans it holds. Every
 * chunk a peer sends is verified against this node's TOC; a peer that sends one bad chunk is
 * quarantined and the read goes on from the next source. A dead, slow, busy or refusing peer costs
 * one timeout at most, never a failed read.
 */
public final class PeerOrigin implements Origin {
    private static final Logger LOG = Logger.getLogger(PeerOrigin.class.getName());
    /** Owners asked before the registry: the owner, and the next one. */
    static final int OWNERS_TRIED = 2;

    private final Frame.Locator where;
    private final Membership membership;
    private final PeerConnections peers;
    private final Quarantine quarantine;
    private final Origin registry;
    private final long fetchUnit;
    private final Duration timeout;

    /**
     * @param where    the blob, as a peer needs it to fetch from the registry itself (offsets are per request)
     * @param registry where to go when no peer answers
     */
    public PeerOrigin(Frame.Locator where, Membership membership, PeerConnections peers, Quarantine quarantine,
                      Origin registry, long fetchUnit, Duration timeout) {
        this.where = where;
        this.membership = membership;
        this.peers = peers;
        this.quarantine = quarantine;
        this.registry = registry;
        this.fetchUnit = fetchUnit;
        this.timeout = timeout;
    }

    @Override
    public Span fetch(List<Chunk> chunks) throws IOException {
        Chunk first = chunks.getFirst();
        long span = Placement.span(first.compressedOffset(), fetchUnit);
        Member self = membership.self();
        List<Member> owners = Placement.owners(where.blobDigest(), span, membership.members(), self.zone());
        IOException registryDown = null;
        int asked = 0;
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
            if (quarantine.isQuarantined(peer.nodeId())) {
                continue;
            }
            asked++;
            try {
                Span got = ask(peer, chunks);
                if (got != null) {
                    return got;
                }
            } catch (IOException partly) { // it had some, and the registry was needed for the rest
                registryDown = registryDown == null ? partly : registryDown;
            }
        }
        if (registryDown != null) {
            throw registryDown;
        }
        return registry.fetch(chunks);
    }

    /** The chunks from one peer (the ones it misses from the registry), or null to try the next source. */
    private Span ask(Member peer, List<Chunk> chunks) throws IOException {
        List<Frame.ChunkRef> refs = new ArrayList<>(chunks.size());
        for (Chunk c : chunks) {
            refs.add(new Frame.ChunkRef(c.compressedOffset(), c.compressedEnd(), (int) c.innerOffset(), (int) c.size(),
                    c.digest()));
        }
        long start = chunks.getFirst().compressedOffset();
        long end = chunks.stream().mapToLong(Chunk::compressedEnd).max().orElseThrow();
        Frame.Locator locator = new Frame.Locator(where.registry(), where.repository(), where.blobDigest(), where.zstd(),
                start, (int) (end - start));
        List<byte[]> answers;
        try {
            answers = peers.get(peer).request(locator, refs, timeout).get(timeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
        } catch (PeerException e) {
            LOG.fine("peer " + peer.nodeId() + " could not serve: " + e.getMessage());
            return null;
        } catch (ExecutionException | TimeoutException e) {
            LOG.fine("peer " + peer.nodeId() + " did not serve: " + e);
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted waiting for peer " + peer.nodeId());
        }
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
                quarantine.quarantine(peer.nodeId(), bad.getMessage());
                return null; // nothing of a lying peer is used
            }
            out.add(Fetched.of(data));
            fromPeer += data.length;
        }
        if (missing.isEmpty()) {
            return new Span(out, 0, 0, fromPeer);
        }
        Span rest = registry.fetch(missing);
        for (int i = 0, m = 0; i < out.size(); i++) {
            if (out.get(i) == null) {
                out.set(i, rest.chunks().get(m++));
            }
        }
        return new Span(out, rest.bytes(), rest.requests(), fromPeer + rest.peerBytes());
    }
}
