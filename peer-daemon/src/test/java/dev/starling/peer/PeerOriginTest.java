package dev.starling.peer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.discovery.Member;
import dev.starling.discovery.Placement;
import dev.starling.discovery.StaticMembership;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FaultyRangeReader;
import dev.starling.fetch.FetchOptions;
import dev.starling.fetch.Origin;
import dev.starling.fetch.RegistryOrigin;
import dev.starling.mount.EStargzImages;
import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerException;
import dev.starling.protocol.PeerServer;
import dev.starling.registry.Manifest;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A layer's peer origin against a real peer server on loopback whose answers the test scripts, and
 * a registry blob that counts (and can fail) its Range requests: requests within the protocol's
 * limits, one owner per span, and a peer that refuses or lies costing a fallback, never a wrong or
 * failed read.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PeerOriginTest {
    static final String CLUSTER = "origin-test";
    static final long UNIT = 2L << 20;
    @TempDir
    static Path work;
    static byte[] blobBytes;
    static String blobDigest;
    static EStargzBlob blob;

    @TempDir
    Path dir;
    final AtomicLong now = new AtomicLong(1);
    final List<Integer> requestSizes = new CopyOnWriteArrayList<>();
    volatile String mode = "honest";
    PeerServer server;
    PeerConnections connections;
    ChunkStore store;
    FaultyRangeReader registryBlob;
    Quarantine quarantine;
    PeerFallbacks fallbacks;
    PeerOrigin origin;
    Member peer;
    Member self;

    @BeforeAll
    static void layer() throws Exception {
        Path tree = Files.createDirectories(work.resolve("tree"));
        Random random = new Random(3);
        for (int i = 0; i < 3000; i++) {
            byte[] b = new byte[800 + random.nextInt(2000)];
            random.nextBytes(b);
            Files.write(tree.resolve(String.format("f-%04d", i)), b);
        }
        EStargzImages.Layer layer = EStargzImages.convert(tree, work.resolve("layer.esgz"), ConvertOptions.defaults());
        blobBytes = Files.readAllBytes(layer.blob());
        blobDigest = Manifest.sha256(blobBytes);
        blob = EStargzBlob.open(RangeReader.of(blobBytes), layer.tocDigest());
    }

    /**
     * The first of {@code prefix-0, prefix-1, ...} that owns span 0 of the blob among {@code others}
     * and itself: the blob's digest changes with every conversion (its tar carries mtimes), so a
     * fixed name would own span 0 in only some runs.
     */
    static String owningSpanZero(String prefix, List<String> others) {
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 1);
        for (int k = 0; ; k++) {
            String id = prefix + "-" + k;
            List<Member> members = new ArrayList<>();
            members.add(new Member(id, any, "zone-a"));
            others.forEach(o -> members.add(new Member(o, any, "zone-a")));
            if (Placement.owners(blobDigest, 0, members, "zone-a").getFirst().nodeId().equals(id)) {
                return id;
            }
        }
    }

    String peerId;

    @BeforeEach
    void start() throws Exception {
        peerId = owningSpanZero("peer", List.of("self"));
        server = PeerServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                PeerServer.Settings.defaults(CLUSTER, peerId), (from, request) -> CompletableFuture.supplyAsync(() -> answer(request)));
        peer = new Member(peerId, server.address(), "zone-a");
        self = new Member("self", new InetSocketAddress(InetAddress.getLoopbackAddress(), 1), "zone-a");
        connections = new PeerConnections(CLUSTER, "self", Duration.ofSeconds(2), null);
        store = new ChunkStore(new DiskChunkCache(dir.resolve("chunks"), 1L << 30), 64L << 20, FetchOptions.DEFAULTS);
        registryBlob = new FaultyRangeReader(blobBytes);
        quarantine = new Quarantine(Duration.ofMinutes(10), now::get);
        fallbacks = new PeerFallbacks();
        PeerAccess access = new PeerAccess(PeerAccess.Mode.PUBLIC, (r, repo, b) -> true, now::get);
        PeerOrigin.Peers peers = new PeerOrigin.Peers(new StaticMembership(self, List.of(self, peer)), connections, quarantine,
                access, fallbacks, UNIT, Duration.ofSeconds(3), Duration.ofSeconds(3));
        Frame.Locator where = new Frame.Locator("registry.test", "app", blobDigest, blob.tocDigest(), false, false, 0, 0);
        origin = new PeerOrigin(where, peers, new RegistryOrigin(registryBlob, new ChunkDecoder(blob.footer().format()), store));
    }

    @AfterEach
    void stop() {
        connections.close();
        server.close();
        store.close();
    }

    /** The scripted peer: honest, refusing, or sending each chunk with a byte flipped. */
    private List<byte[]> answer(Frame.Request request) {
        requestSizes.add(request.chunks().size());
        if (mode.equals("refuse")) {
            throw new java.util.concurrent.CompletionException(new PeerException.Refused("peer", Frame.ErrorCode.FAILED,
                    "the registry answered 503"));
        }
        List<byte[]> out = new ArrayList<>();
        for (Frame.ChunkRef ref : request.chunks()) {
            try {
                byte[] data = blob.readChunk(blob.index().chunkAt(ref.compressedOffset(), ref.innerOffset()));
                if (mode.equals("lie")) {
                    data = data.clone();
                    data[0] ^= 1;
                }
                out.add(data);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
        return out;
    }

    /** The chunks of the first placement span the peer owns, and of the next span after it, as one run in blob order. */
    private List<Chunk> runOwnedByThePeer(boolean intoTheNextSpan) {
        TocIndex index = blob.index();
        List<Member> members = List.of(self, peer);
        long span = 0;
        while (!Placement.owners(blobDigest, span, members, "zone-a").getFirst().nodeId().equals(peerId)) {
            span++;
        }
        List<Chunk> run = new ArrayList<>();
        for (int i = index.firstChunkFrom(span * UNIT); i < index.chunkTotal(); i++) {
            Chunk c = index.chunkAt(i);
            if (c == null || c.digest() == null) {
                continue;
            }
            if (Placement.span(c.compressedOffset(), UNIT) > span + (intoTheNextSpan ? 1 : 0)) {
                break;
            }
            run.add(c);
        }
        return run;
    }

    private void assertRight(List<Chunk> run, Origin.Span got) throws Exception {
        assertEquals(run.size(), got.chunks().size());
        for (int i = 0; i < run.size(); i++) {
            assertArrayEquals(blob.readChunk(run.get(i)), got.chunks().get(i).data(), "chunk " + i);
        }
    }

    @Test
    void aRunOfThousandsOfSmallFilesGoesInRequestsWithinTheProtocolsLimit() throws Exception {
        List<Chunk> run = runOwnedByThePeer(false);
        assertTrue(run.size() > 1024, "a 2 MiB span of 1-3 KB files holds more than 1,024 chunks: " + run.size());
        Origin.Span got = origin.fetch(run);
        assertRight(run, got);
        assertTrue(requestSizes.size() >= 2 && requestSizes.stream().allMatch(n -> n <= 1024), "requests of " + requestSizes);
        assertEquals(run.size(), requestSizes.stream().mapToInt(Integer::intValue).sum(), "each chunk asked for once");
        assertEquals(0, registryBlob.requests.get(), "the owner served it all");
        assertEquals(0, fallbacks.counts().values().stream().mapToLong(Long::longValue).sum());
    }

    @Test
    void aRunIntoTheNextSpanIsAskedOfThatSpansOwner() throws Exception {
        List<Chunk> run = runOwnedByThePeer(true);
        java.util.function.Predicate<Chunk> peersSpan = c -> Placement.owners(blobDigest, Placement.span(c.compressedOffset(), UNIT),
                List.of(self, peer), "zone-a").getFirst().nodeId().equals(peerId);
        long asked = run.stream().filter(peersSpan).count();
        Origin.Span got = origin.fetch(run);
        assertRight(run, got);
        assertEquals(asked, requestSizes.stream().mapToInt(Integer::intValue).sum(), "the peer was asked for its spans only");
        assertEquals(asked == run.size() ? 0 : 1, registryBlob.requests.get(), "this node fills a span it owns itself, in one request");
    }

    @Test
    void aPeerThatSendsWrongBytesIsQuarantinedAndTheReadComesRightFromTheRegistry() throws Exception {
        mode = "lie";
        List<Chunk> run = runOwnedByThePeer(false).subList(0, 10);
        assertRight(run, origin.fetch(run));
        assertTrue(quarantine.isQuarantined(peerId));
        assertEquals(1, fallbacks.count(PeerFallbacks.Reason.VIOLATION));
        assertEquals(1, registryBlob.requests.get());
        requestSizes.clear();
        assertRight(run, origin.fetch(run));
        assertEquals(List.of(), requestSizes, "a quarantined peer is not asked again");
    }

    @Test
    void aRefusalCostsOneFallbackCountedByReasonAndTheRegistryOnce() throws Exception {
        mode = "refuse";
        List<Chunk> run = runOwnedByThePeer(false).subList(0, 10);
        assertRight(run, origin.fetch(run));
        assertEquals(1, fallbacks.count(PeerFallbacks.Reason.REFUSED));
        assertEquals(1, registryBlob.requests.get());
        assertTrue(!quarantine.isQuarantined(peerId), "a refusal is not a lie");
    }

    @Test
    void whenTheRegistryFailsTooTheReadFailsWithTheRegistrysReason() throws Exception {
        mode = "refuse";
        registryBlob.failNext(10);
        List<Chunk> run = runOwnedByThePeer(false).subList(0, 3);
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class, () -> origin.fetch(run));
        assertTrue(e.getMessage().contains("503"), e.getMessage());
    }

    /** A three-member cluster in which "owner" (one upload slot, held by another requester) owns the span and "holder" has it. */
    private final class Swarm implements AutoCloseable {
        final java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        /** The servers' own threads: the common pool has one thread on two cores, and the occupier blocks one. */
        final java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
        final java.util.concurrent.CountDownLatch occupied = new java.util.concurrent.CountDownLatch(1);
        final List<Boolean> holderAskedHeldOnly = new CopyOnWriteArrayList<>();
        final java.util.concurrent.atomic.AtomicInteger ownerServed = new java.util.concurrent.atomic.AtomicInteger();
        final PeerServer ownerServer;
        final PeerServer holderServer;
        final PeerConnections swarmConnections = new PeerConnections(CLUSTER, "self", Duration.ofSeconds(2), null);
        final PeerFallbacks swarmFallbacks = new PeerFallbacks();
        final PeerOrigin swarmOrigin;
        final List<Chunk> run;
        final dev.starling.protocol.PeerClient occupier;
        final CompletableFuture<List<byte[]>> occupying;

        final String ownerId = owningSpanZero("owner", List.of("self", "holder"));

        Swarm(List<String> holdersNamed) throws Exception {
            ownerServer = PeerServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                    PeerServer.Settings.defaults(CLUSTER, ownerId).withUploadSlots(1), new dev.starling.protocol.ChunkProvider() {
                        @Override
                        public CompletableFuture<List<byte[]>> serve(dev.starling.protocol.PeerIdentity from, Frame.Request request) {
                            return CompletableFuture.supplyAsync(() -> {
                                if (from.nodeId().equals("occupier")) {
                                    occupied.countDown();
                                    try {
                                        release.await(30, TimeUnit.SECONDS);
                                    } catch (InterruptedException e) {
                                        Thread.currentThread().interrupt();
                                    }
                                } else {
                                    ownerServed.incrementAndGet();
                                }
                                return answer(request);
                            }, threads);
                        }

                        @Override
                        public List<String> holders(dev.starling.protocol.PeerIdentity from, Frame.Request request) {
                            return holdersNamed;
                        }
                    });
            holderServer = PeerServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                    PeerServer.Settings.defaults(CLUSTER, "holder"), (from, request) -> CompletableFuture.supplyAsync(() -> {
                        holderAskedHeldOnly.add(request.locator().heldOnly());
                        return answer(request);
                    }, threads));
            Member owner = new Member(ownerId, ownerServer.address(), "zone-a");
            Member holder = new Member("holder", holderServer.address(), "zone-a");
            List<Member> members = List.of(self, owner, holder);
            long span = 0;
            while (!Placement.owners(blobDigest, span, members, "zone-a").getFirst().nodeId().equals(ownerId)) {
                span++;
            }
            List<Chunk> chunks = new ArrayList<>();
            for (int i = blob.index().firstChunkFrom(span * UNIT); i < blob.index().chunkTotal() && chunks.size() < 50; i++) {
                Chunk c = blob.index().chunkAt(i);
                if (c != null && c.digest() != null && Placement.span(c.compressedOffset(), UNIT) == span) {
                    chunks.add(c);
                }
            }
            run = chunks;
            PeerAccess access = new PeerAccess(PeerAccess.Mode.PUBLIC, (r, repo, b) -> true, now::get);
            PeerOrigin.Peers peers = new PeerOrigin.Peers(new StaticMembership(self, members), swarmConnections, quarantine,
                    access, swarmFallbacks, UNIT, Duration.ofSeconds(3), Duration.ofSeconds(3));
            Frame.Locator where = new Frame.Locator("registry.test", "app", blobDigest, blob.tocDigest(), false, false, 0, 0);
            swarmOrigin = new PeerOrigin(where, peers, new RegistryOrigin(registryBlob, new ChunkDecoder(blob.footer().format()), store));
            occupier = dev.starling.protocol.PeerClient.connect(ownerServer.address(), CLUSTER, "occupier", Duration.ofSeconds(2), null,
                    dev.starling.protocol.FrameCodec.DEFAULT_MAX_FRAME);
            List<Frame.ChunkRef> one = List.of(new Frame.ChunkRef(run.getFirst().compressedOffset(), run.getFirst().compressedEnd(),
                    (int) run.getFirst().innerOffset(), (int) run.getFirst().size(), run.getFirst().digest()));
            occupying = occupier.request(where.span(run.getFirst().compressedOffset(), 1), one, Duration.ofSeconds(60));
            assertTrue(occupied.await(10, TimeUnit.SECONDS), "the owner's one upload slot is taken");
        }

        @Override
        public void close() {
            release.countDown();
            occupier.close();
            swarmConnections.close();
            ownerServer.close();
            holderServer.close();
            threads.shutdownNow();
        }
    }

    @Test
    void aBusyOwnerSendsTheReaderToAHolderOfTheSpan() throws Exception {
        try (Swarm swarm = new Swarm(List.of("holder"))) {
            assertRight(swarm.run, swarm.swarmOrigin.fetch(swarm.run));
            assertEquals(List.of(true), swarm.holderAskedHeldOnly, "the holder was asked once, for what it holds");
            assertEquals(0, swarm.ownerServed.get());
            assertEquals(1, swarm.swarmFallbacks.servedByHolders());
            assertEquals(0, registryBlob.requests.get(), "and the registry not at all");
            assertEquals(0, swarm.swarmFallbacks.counts().values().stream().mapToLong(Long::longValue).sum(), "no fallback");
        }
    }

    @Test
    void aBusyOwnerThatNamesNoHolderIsAskedAgainWhenItsSlotIsFree() throws Exception {
        try (Swarm swarm = new Swarm(List.of())) {
            CompletableFuture.delayedExecutor(1200, TimeUnit.MILLISECONDS, swarm.threads).execute(swarm.release::countDown);
            assertRight(swarm.run, swarm.swarmOrigin.fetch(swarm.run));
            assertEquals(1, swarm.ownerServed.get(), "the owner served it once its slot was free");
            assertEquals(List.of(), swarm.holderAskedHeldOnly);
            assertEquals(0, registryBlob.requests.get(), "not the registry: the owner was only busy");
            assertEquals(0, swarm.swarmFallbacks.count(PeerFallbacks.Reason.BUSY));
        }
    }

    @Test
    void aHolderThatLiesIsQuarantinedAndTheReadComesRightFromTheNextSource() throws Exception {
        try (Swarm swarm = new Swarm(List.of("holder"))) {
            mode = "lie"; // the owner's occupied slot is not asked again; the holder sends each chunk with a byte flipped
            assertRight(swarm.run, swarm.swarmOrigin.fetch(swarm.run));
            assertTrue(quarantine.isQuarantined("holder"), "the holder, not the owner that named it");
            assertTrue(!quarantine.isQuarantined(swarm.ownerId));
            assertEquals(1, swarm.swarmFallbacks.count(PeerFallbacks.Reason.VIOLATION));
            assertEquals(0, swarm.swarmFallbacks.servedByHolders(), "nothing of a lying holder is counted as served");
            assertEquals(1, registryBlob.requests.get());
        }
    }
}
