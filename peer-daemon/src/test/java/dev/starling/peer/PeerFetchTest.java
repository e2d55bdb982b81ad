package dev.starling.peer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.discovery.Member;
import dev.starling.discovery.StaticMembership;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fetch.LayerReader;
import dev.starling.fetch.RegistryOrigin;
import dev.starling.fetch.RegistryRangeReader;
import dev.starling.fetch.VerifiedBlob;
import dev.starling.mount.EStargzImages;
import dev.starling.protocol.ChunkProvider;
import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerClient;
import dev.starling.protocol.PeerException;
import dev.starling.protocol.PeerServer;
import dev.starling.registry.Digest;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Nodes that fetch through each other, on real sockets, from a real registry: owners fill from the
 * registry once for the cluster; a lying peer is caught on every chunk and quarantined; a dead peer
 * costs no read; a registry outside the allowlist is refused.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PeerFetchTest {
    static final String CLUSTER = "test-cluster";
    static final InetSocketAddress ANY = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
    static final FetchOptions ON_DEMAND = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false);

    @TempDir
    Path dir;

    LocalRegistry registry;
    RegistryClient client;
    ImageReference ref;
    Digest blobDigest;
    String tocDigest;
    byte[] big;
    final ExecutorService executor = Executors.newCachedThreadPool();
    final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
        client = RegistryClient.anonymous();
        Path tree = Files.createDirectories(dir.resolve("tree"));
        big = new byte[40 << 20];
        new Random(11).nextBytes(big);
        Files.write(tree.resolve("model.bin"), big);
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve("layer.esgz"), ConvertOptions.defaults());
        ref = registry.ref("peers/model:v1");
        EStargzImages.push(client, ref, List.of(layer));
        blobDigest = Digest.parse(Manifest.sha256(Files.readAllBytes(layer.blob())));
        tocDigest = layer.tocDigest();
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : toClose.reversed()) {
            c.close();
        }
        executor.shutdownNow();
        client.close();
        registry.close();
    }

    /** A node: its chunk store and peer server; its layer reader once the cluster is known. */
    final class Node {
        final String id;
        final ChunkStore store;
        final PeerServer server;
        final Quarantine quarantine = new Quarantine(Duration.ofMinutes(5), System::nanoTime);
        final PeerFallbacks fallbacks = new PeerFallbacks();
        PeerAccess access = new PeerAccess(PeerAccess.Mode.PUBLIC, (r, repo, blob) -> true, System::nanoTime);
        PeerChunkProvider provider;
        LayerReader reader;
        Duration timeout = Duration.ofSeconds(3);
        Duration hedgeAfter = Duration.ofSeconds(3);

        Node(String id, ChunkProvider override, Set<String> allowed) throws Exception {
            this.id = id;
            store = new ChunkStore(new DiskChunkCache(dir.resolve("chunks-" + id), 1L << 30), 64 << 20, ON_DEMAND);
            provider = new PeerChunkProvider(store, access, blob -> null, (repository, blob, registryAllowed) -> {
                RegistryRangeReader remote = new RegistryRangeReader(client, repository, blob.toString());
                return new VerifiedBlob(EStargzBlob.open(remote, null), remote); // what a node not holding the layer does
            }, allowed::contains, executor, System::nanoTime);
            server = PeerServer.start(ANY, PeerServer.Settings.defaults(CLUSTER, id), override != null ? override : provider);
            toClose.add(store);
            toClose.add(server);
        }

        Member member() {
            return new Member(id, server.address(), "zone-a");
        }

        void join(List<Node> cluster) throws Exception {
            RegistryRangeReader remote = new RegistryRangeReader(client, ref, blobDigest.toString());
            EStargzBlob blob = EStargzBlob.open(remote, tocDigest);
            RegistryOrigin fromRegistry = new RegistryOrigin(remote, new ChunkDecoder(blob.footer().format()), store);
            PeerConnections connections = new PeerConnections(CLUSTER, id, Duration.ofSeconds(2), null);
            toClose.add(connections);
            StaticMembership membership = new StaticMembership(member(), cluster.stream().map(Node::member).toList());
            Frame.Locator where = new Frame.Locator(registry.host(), ref.repository(), blobDigest.toString(), tocDigest, false,
                    false, 0, 0);
            PeerOrigin origin = new PeerOrigin(where, new PeerOrigin.Peers(membership, connections, quarantine, access, fallbacks,
                    ON_DEMAND.fetchUnit(), timeout, hedgeAfter), fromRegistry);
            reader = new LayerReader(blobDigest, blob, remote.size(), origin, store);
            toClose.add(reader);
        }

        byte[] readAll() throws Exception {
            TocIndex index = reader.index();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (int i = 0; i < index.chunkTotal(); i++) {
                Chunk c = index.chunkAt(i);
                if (c != null && c.file().path().equals("model.bin")) {
                    out.write(reader.read(c));
                }
            }
            return out.toByteArray();
        }
    }

    /** Three honest nodes that know each other, each with the layer open. */
    List<Node> threeNodes() throws Exception {
        List<Node> cluster = List.of(new Node("a", null, Set.of(registry.host())), new Node("b", null, Set.of(registry.host())),
                new Node("c", null, Set.of(registry.host())));
        for (Node n : cluster) {
            n.join(cluster);
        }
        return cluster;
    }

    @Test
    void eachSpanLeavesTheRegistryAboutOnceForTheCluster() throws Exception {
        List<Node> cluster = threeNodes();
        long before = registry.blobBytesServed();
        for (Node n : cluster) {
            assertArrayEquals(big, n.readAll(), "node " + n.id + " reads the right bytes");
        }
        long egress = registry.blobBytesServed() - before;
        assertTrue(egress < big.length * 1.1, "three nodes read 40 MiB; the registry served " + egress + " bytes");
        long fromPeers = cluster.stream().mapToLong(n -> n.reader.counters().peerBytes()).sum();
        assertTrue(fromPeers >= big.length, "the rest came from peers: " + fromPeers);
        assertTrue(cluster.stream().filter(n -> n.server.bytesServed() > 0).count() >= 2,
                "the spans' owners are spread: " + cluster.stream().map(n -> n.id + "=" + n.server.bytesServed()).toList());
    }

    @Test
    void aPeerServingWrongBytesIsCaughtOnEveryChunkAndQuarantined() throws Exception {
        ChunkProvider liar = (peer, request) -> CompletableFuture.completedFuture(request.chunks().stream().map(c -> {
            byte[] junk = new byte[c.size()];
            new Random(c.size()).nextBytes(junk);
            return junk;
        }).toList());
        Node bad = new Node("liar", liar, Set.of(registry.host()));
        Node reader = new Node("reader", null, Set.of(registry.host()));
        List<Node> cluster = List.of(bad, reader);
        reader.join(cluster);
        assertArrayEquals(big, reader.readAll(), "no bad byte reaches the reader");
        assertTrue(reader.quarantine.count() >= 1, "the liar was caught");
        assertEquals(Set.of("liar"), reader.quarantine.current());
        assertTrue(bad.server.bytesServed() > 0, "it was asked, and lied");
    }

    @Test
    void aSlowOwnerCostsTheHedgeDelayWhenAnotherPeerHoldsTheSpan() throws Exception {
        ChunkProvider stuck = (peer, request) -> new CompletableFuture<>(); // accepts every request, answers none
        Node slow = new Node("slow", stuck, Set.of(registry.host()));
        Node good = new Node("good", null, Set.of(registry.host()));
        Node reader = new Node("reader", null, Set.of(registry.host()));
        reader.timeout = Duration.ofSeconds(20);
        reader.hedgeAfter = Duration.ofMillis(100);
        good.timeout = Duration.ofMillis(300);
        List<Node> cluster = List.of(slow, good, reader);
        good.join(cluster);
        reader.join(cluster);
        assertArrayEquals(big, good.readAll(), "the good node reads it all first (the slow owner's spans after a timeout)");
        long before = registry.blobBytesServed();
        long t0 = System.nanoTime();
        assertArrayEquals(big, reader.readAll(), "every byte, though one owner never answers");
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(0, slow.server.bytesServed(), "the slow owner served nothing");
        // 20 spans, about a third owned by the slow node: 100 ms each, the good node answering the
        // hedge from what it holds; a 20 s timeout each without it
        assertTrue(seconds < 10, "the read waited for the slow owner only the hedge delay: " + seconds + " s");
        assertTrue(registry.blobBytesServed() - before < big.length / 10, "and the hedge fetched nothing twice from the "
                + "registry: " + (registry.blobBytesServed() - before) + " bytes");
    }

    @Test
    void aDeadPeerCostsNoFailedRead() throws Exception {
        Node dead = new Node("dead", null, Set.of(registry.host()));
        Node reader = new Node("reader", null, Set.of(registry.host()));
        List<Node> cluster = List.of(dead, reader);
        reader.join(cluster);
        dead.server.close();
        assertArrayEquals(big, reader.readAll());
    }

    @Test
    void aRegistryOutsideTheAllowlistIsRefused() throws Exception {
        Node strict = new Node("strict", null, Set.of(registry.host()));
        try (PeerClient peer = PeerClient.connect(strict.server.address(), CLUSTER, "asker", Duration.ofSeconds(2), null,
                dev.starling.protocol.FrameCodec.DEFAULT_MAX_FRAME)) {
            Frame.Locator evil = new Frame.Locator("evil.example:5000", "x/y", blobDigest.toString(), tocDigest, false, false, 0, 100);
            ExecutionException e = assertThrows(ExecutionException.class, () -> peer.request(evil,
                    List.of(new Frame.ChunkRef(0, 100, 0, 10, new byte[32])), Duration.ofSeconds(3)).get(5, TimeUnit.SECONDS));
            PeerException.Refused refused = assertInstanceOf(PeerException.Refused.class, e.getCause());
            assertEquals(Frame.ErrorCode.REGISTRY_NOT_ALLOWED, refused.code());
            assertEquals(1, strict.provider.refused());
            assertEquals(0, strict.provider.fillBytes(), "nothing was fetched for it");
        }
    }

    @Test
    void aPeerThatDiedLeavesNoClosedConnectionBehind() throws Exception {
        Node peer = new Node("short-lived", null, Set.of(registry.host()));
        PeerConnections connections = new PeerConnections(CLUSTER, "asker", Duration.ofSeconds(2), null);
        connections.get(peer.member());
        peer.server.close();
        Thread.sleep(200); // the connection notices the close
        assertThrows(PeerException.class, () -> connections.get(peer.member()), "reconnecting to a dead peer fails");
        connections.close(); // and closing what is left does not trip over the connection closed on the way
    }

    /** A client of {@code node}'s peer port, as any program that can reach it: no certificate. */
    PeerClient stranger(Node node) throws PeerException {
        PeerClient c = PeerClient.connect(node.server.address(), CLUSTER, "stranger", Duration.ofSeconds(2), null,
                dev.starling.protocol.FrameCodec.DEFAULT_MAX_FRAME);
        toClose.add(c);
        return c;
    }

    static PeerException.Refused refusal(CompletableFuture<List<byte[]>> answer) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> answer.get(10, TimeUnit.SECONDS));
        return assertInstanceOf(PeerException.Refused.class, e.getCause());
    }

    @Test
    void aRequestThatNoVerifiedTocJustifiesMakesTheNodeFetchNothing() throws Exception {
        Node owner = new Node("owner", null, Set.of(registry.host()));
        PeerClient peer = stranger(owner);
        Frame.Locator where = new Frame.Locator(registry.host(), ref.repository(), blobDigest.toString(), tocDigest, false, false,
                0, 64 << 20);
        byte[] never = new byte[32];
        new Random(5).nextBytes(never);
        long before = registry.blobBytesServed();
        // the ~150-byte request of the report: a real blob, a digest that can never verify, a 64 MiB span
        PeerException.Refused unlisted = refusal(peer.request(where,
                List.of(new Frame.ChunkRef(0, 64 << 20, 0, 64 << 20, never)), Duration.ofSeconds(10)));
        assertEquals(Frame.ErrorCode.BAD_REQUEST, unlisted.code());
        assertTrue(unlisted.getMessage().contains("is not one the blob's TOC lists"), unlisted.getMessage());
        long tocBytes = registry.blobBytesServed() - before;
        assertTrue(tocBytes <= 128 << 10, "the node fetched the blob's footer and TOC (its tail), nothing else: " + tocBytes + " bytes");
        for (int i = 0; i < 50; i++) { // again and again: the verified TOC is kept, nothing more is fetched
            refusal(peer.request(where, List.of(new Frame.ChunkRef(i, 64 << 20, 0, 1 << 20, never)), Duration.ofSeconds(10)));
        }
        Frame.Locator lying = new Frame.Locator(registry.host(), ref.repository(), blobDigest.toString(),
                "sha256:" + "0".repeat(64), false, false, 0, 100);
        PeerException.Refused wrongToc = refusal(peer.request(lying, List.of(new Frame.ChunkRef(0, 100, 0, 10, never)),
                Duration.ofSeconds(10)));
        assertTrue(wrongToc.getMessage().contains("cannot verify the TOC"), wrongToc.getMessage());
        Random digests = new Random(6);
        for (int i = 0; i < 20; i++) { // whatever TOC digest is named, the blob's TOC is read once
            Frame.Locator another = new Frame.Locator(registry.host(), ref.repository(), blobDigest.toString(),
                    "sha256:" + java.util.HexFormat.of().formatHex(new byte[32]).replace('0', "0123456789abcdef".charAt(digests.nextInt(16))),
                    false, false, 0, 100);
            refusal(peer.request(another, List.of(new Frame.ChunkRef(0, 100, 0, 10, never)), Duration.ofSeconds(10)));
        }
        assertEquals(tocBytes, registry.blobBytesServed() - before, "no TOC is fetched twice, whatever digest is named");
        assertEquals(0, owner.provider.fillBytes(), "nothing was filled");
    }

    @Test
    void aPrivateBlobIsNeitherServedToAStrangerNorNamedToPeers() throws Exception {
        Node holder = new Node("holder", null, Set.of(registry.host()));
        holder.access = new PeerAccess(PeerAccess.Mode.PUBLIC, (r, repo, blob) -> false, System::nanoTime); // a private repository
        holder.provider = new PeerChunkProvider(holder.store, holder.access, blob -> null, (repository, blob, allowed) -> {
            throw new AssertionError("a blob the requester may not read is not even looked at");
        }, Set.of(registry.host())::contains, executor, System::nanoTime);
        holder.server.close();
        Node served = new Node("holder2", holder.provider, Set.of(registry.host()));
        PeerClient peer = stranger(served);
        Frame.Locator where = new Frame.Locator(registry.host(), ref.repository(), blobDigest.toString(), tocDigest, false, false,
                0, 100);
        long before = registry.blobBytesServed();
        PeerException.Refused forbidden = refusal(peer.request(where, List.of(new Frame.ChunkRef(0, 100, 0, 10, new byte[32])),
                Duration.ofSeconds(5)));
        assertEquals(Frame.ErrorCode.FORBIDDEN, forbidden.code());
        assertEquals(1, holder.provider.forbidden());
        assertEquals(before, registry.blobBytesServed(), "and it cost the registry nothing");

        Node reader = new Node("reader", null, Set.of(registry.host()));
        reader.access = holder.access;
        reader.join(List.of(served, reader));
        assertArrayEquals(big, reader.readAll(), "the reader reads the private layer from the registry");
        assertEquals(1, holder.provider.forbidden(), "without naming it to its peer");
        assertEquals(0, served.server.bytesServed());
        assertEquals(1, reader.fallbacks.count(PeerFallbacks.Reason.PRIVATE), "counted once, as a private layer");
    }

    @Test
    void inClusterModeOnlyAPeerWithACertificateIsServed() throws Exception {
        Node node = new Node("node", null, Set.of(registry.host()));
        node.access = new PeerAccess(PeerAccess.Mode.CLUSTER, (r, repo, blob) -> true, System::nanoTime);
        Node guarded = new Node("guarded", new PeerChunkProvider(node.store, node.access, blob -> null,
                (repository, blob, allowed) -> {
                    throw new AssertionError("not looked at");
                }, Set.of(registry.host())::contains, executor, System::nanoTime), Set.of(registry.host()));
        Frame.Locator where = new Frame.Locator(registry.host(), ref.repository(), blobDigest.toString(), tocDigest, false, false,
                0, 100);
        PeerException.Refused forbidden = refusal(stranger(guarded).request(where,
                List.of(new Frame.ChunkRef(0, 100, 0, 10, new byte[32])), Duration.ofSeconds(5)));
        assertEquals(Frame.ErrorCode.FORBIDDEN, forbidden.code(), "a plain connection proves no membership");
        assertTrue(forbidden.getMessage().contains("cluster certificate"), forbidden.getMessage());
    }

    @Test
    void aLayerOfTwentyThousandSmallFilesLeavesTheRegistryAboutOnceForThreeNodes() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("site-packages"));
        Random random = new Random(17);
        long total = 0;
        for (int i = 0; i < 20_000; i++) { // a Python tree: many small modules, some a few KiB
            Path pkg = Files.createDirectories(tree.resolve("pkg" + i / 200));
            byte[] module = new byte[200 + random.nextInt(3000)];
            random.nextBytes(module);
            Files.write(pkg.resolve("mod" + i + ".py"), module);
            total += module.length;
        }
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve("small.esgz"), ConvertOptions.defaults());
        ref = registry.ref("peers/python:v1");
        EStargzImages.push(client, ref, List.of(layer));
        blobDigest = Digest.parse(Manifest.sha256(Files.readAllBytes(layer.blob())));
        tocDigest = layer.tocDigest();
        long blobSize = Files.size(layer.blob());
        List<Node> cluster = threeNodes();
        long before = registry.blobBytesServed();
        for (Node n : cluster) {
            TocIndex index = n.reader.index();
            long read = 0;
            for (int i = 0; i < index.chunkTotal(); i++) {
                Chunk c = index.chunkAt(i);
                if (c != null && c.file().path().startsWith("pkg")) {
                    read += n.reader.read(c).length;
                }
            }
            assertEquals(total, read, "node " + n.id + " read every file");
        }
        long egress = registry.blobBytesServed() - before;
        assertTrue(egress < blobSize * 1.1, "three nodes read a " + blobSize + "-byte layer of 20,000 files; the registry "
                + "served " + egress + " bytes (" + String.format("%.2f", egress / (double) blobSize) + "x); per node: "
                + cluster.stream().map(n -> n.id + " own " + n.reader.counters().fetchedBytes() + " filled " + n.provider.fillBytes()
                + " from peers " + n.reader.counters().peerBytes() + " fallbacks " + n.fallbacks.counts()).toList());
        for (Node n : cluster) {
            assertEquals(0, n.fallbacks.counts().values().stream().mapToLong(Long::longValue).sum(),
                    "no peer refused node " + n.id + ": " + n.fallbacks.counts());
        }
    }
}
