package dev.starling.daemon;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starling.cli.StarlingCli;
import dev.starling.discovery.AtomixMembership;
import dev.starling.discovery.Member;
import dev.starling.estargz.Chunk;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.protocol.ChunkProvider;
import dev.starling.protocol.Frame;
import dev.starling.protocol.FrameCodec;
import dev.starling.protocol.PeerClient;
import dev.starling.protocol.PeerException;
import dev.starling.protocol.PeerServer;
import dev.starling.registry.CredentialProvider;
import dev.starling.registry.Credentials;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The peer plane attacked as the probe kit did, against real `starling daemon` processes
 * and a real registry, with the daemon's default options: a client with no certificate asking for
 * a private image's chunks and for a fill of one never mounted; well-formed requests with hostile
 * values (digests no TOC lists, 64 MiB spans, blobs never opened); an unprivileged local user;
 * a member that answers with more bytes than it was asked for; slow and many connections.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class PeerPlaneSecurityTest {
    static final String CLUSTER = "sec";

    @TempDir
    Path dir;

    record Image(ImageReference ref, EStargzImages.Layer layer, String blob, TocIndex toc) {
        /** A request for chunks {@code from..to} of this image's layer, as its TOC lists them. */
        List<Frame.ChunkRef> refs(int from, int to) {
            List<Frame.ChunkRef> out = new ArrayList<>();
            for (int i = from; i < to && i < toc.chunkTotal(); i++) {
                Chunk c = toc.chunkAt(i);
                if (c != null && c.digest() != null) {
                    out.add(new Frame.ChunkRef(c.compressedOffset(), c.compressedEnd(), (int) c.innerOffset(), (int) c.size(),
                            c.digest()));
                }
            }
            return out;
        }

        Frame.Locator where() {
            return new Frame.Locator(ref.registry(), ref.repository(), blob, layer.tocDigest(), false, false, 0, 1 << 20);
        }
    }

    Image image(RegistryClient client, LocalRegistry registry, String name, int seed) throws Exception {
        Path tree = Files.createDirectories(dir.resolve(name + "/data"));
        byte[] model = new byte[12 << 20];
        new Random(seed).nextBytes(model);
        Files.write(tree.resolve("model.bin"), model);
        Files.writeString(tree.resolve("secret.txt"), "the private marker of " + name + "\n");
        EStargzImages.Layer layer = EStargzImages.convert(dir.resolve(name), dir.resolve(name + ".esgz"), ConvertOptions.defaults());
        ImageReference ref = registry.ref("team/" + name + ":v1");
        EStargzImages.push(client, ref, List.of(layer));
        String blob = Manifest.sha256(Files.readAllBytes(layer.blob()));
        TocIndex toc = EStargzBlob.open(RangeReader.open(layer.blob()), layer.tocDigest()).index();
        return new Image(ref, layer, blob, toc);
    }

    /** Pushes an image of one 24 MiB model file ({@code models/model.bin}) to {@code ref}; its bytes. */
    byte[] pushModel(RegistryClient client, ImageReference ref, int seed) throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree/models"));
        byte[] model = new byte[24 << 20];
        new Random(seed).nextBytes(model);
        Files.write(tree.resolve("model.bin"), model);
        EStargzImages.Layer layer = EStargzImages.convert(dir.resolve("tree"), dir.resolve("layer.esgz"), ConvertOptions.defaults());
        EStargzImages.push(client, ref, List.of(layer));
        return model;
    }

    PeerClient stranger(DaemonProcess daemon, InetSocketAddress peerPort) throws Exception {
        return PeerClient.connect(peerPort, CLUSTER, "stranger", Duration.ofSeconds(5), null, FrameCodec.DEFAULT_MAX_FRAME);
    }

    static PeerException.Refused refusal(CompletableFuture<List<byte[]>> answer) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> answer.get(20, TimeUnit.SECONDS));
        return assertInstanceOf(PeerException.Refused.class, e.getCause());
    }

    /** Runs {@code command} as the unprivileged user nobody; its exit status and output. */
    static String asNobody(String... command) throws Exception {
        List<String> argv = new ArrayList<>(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"));
        argv.addAll(List.of(command));
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return p.waitFor() + ": " + out;
    }

    @Test
    void aPrivateImageReachesNoStrangerNoLocalUserAndNoFillForThem() throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // only the daemon's root guards it
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.HTPASSWD);
             RegistryClient client = new RegistryClient(RegistryClient.Settings.defaults().withCredentials(
                     CredentialProvider.of(registry.host(), Credentials.basic(LocalRegistry.USER, LocalRegistry.PASSWORD))))) {
            Image mounted = image(client, registry, "mounted", 1);
            Image never = image(client, registry, "never", 2);
            Path docker = Files.createDirectories(dir.resolve("docker"));
            Files.writeString(docker.resolve("config.json"), "{\"auths\":{\"" + registry.host() + "\":{\"auth\":\""
                    + Base64.getEncoder().encodeToString((LocalRegistry.USER + ":" + LocalRegistry.PASSWORD).getBytes()) + "\"}}}");
            InetSocketAddress peerPort = new InetSocketAddress("127.0.0.1", DaemonConfig.freePortPair());
            Path target = dir.resolve("rootfs");
            try (DaemonProcess node = DaemonProcess.start(dir, "node", List.of("--peer-listen", "127.0.0.1:" + peerPort.getPort(),
                    "--cluster-id", CLUSTER, "--cache-size", "1G", "--no-store"), Map.of("DOCKER_CONFIG", docker.toString()))) {
                node.awaitReady();
                try {
                    assertEquals(0, StarlingCli.run("mount", "--socket", node.socket().toString(), mounted.ref().toString(),
                            target.toString()), node.log());
                    assertEquals("the private marker of mounted\n", Files.readString(target.resolve("data/secret.txt")));
                    Files.readAllBytes(target.resolve("data/model.bin")); // the node holds every chunk now
                    long before = registry.blobBytesServed();
                    try (PeerClient peer = stranger(node, peerPort)) {
                        PeerException.Refused held = refusal(peer.request(mounted.where(), mounted.refs(0, 8), Duration.ofSeconds(10)));
                        assertEquals(Frame.ErrorCode.FORBIDDEN, held.code(), "a held chunk of a private image: " + held.getMessage());
                        PeerException.Refused fill = refusal(peer.request(never.where(), never.refs(0, 8), Duration.ofSeconds(10)));
                        assertEquals(Frame.ErrorCode.FORBIDDEN, fill.code(), "a fill of a private image never mounted here");
                    }
                    assertEquals(before, registry.blobBytesServed(), "the node fetched nothing with its credentials for the stranger");
                    JsonNode status = node.status();
                    assertEquals(2, status.path("forbiddenPeerRequests").asInt(), status.toPrettyString());
                    assertEquals("public", status.path("peerAccess").asText());

                    // a local user: the root is the daemon's alone, and so is everything under it
                    Path root = node.root();
                    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(root)));
                    String listing = asNobody("ls", root.resolve("chunks").toString());
                    assertTrue(listing.startsWith("2: ") && listing.contains("Permission denied"), listing);
                    Path layerMount = root.resolve("mounts/0/layer-0");
                    assertEquals("the private marker of mounted\n", Files.readString(layerMount.resolve("data/secret.txt")),
                            "the layer's own FUSE mount (allow_other, for the runtime) is there");
                    String read = asNobody("cat", layerMount.resolve("data/secret.txt").toString());
                    assertTrue(!read.contains("private marker") && read.contains("Permission denied"),
                            "a local user reads nothing through the layer mounts: " + read);
                    try (Stream<Path> kept = Files.list(root.resolve("tocs"))) {
                        for (Path toc : kept.toList()) {
                            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(toc)), toc.toString());
                        }
                    }
                    try (Stream<Path> blobs = Files.list(root.resolve("chunks"))) {
                        for (Path b : blobs.filter(Files::isDirectory).toList()) {
                            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(b)), b.toString());
                        }
                    }
                } finally {
                    StarlingCli.run("umount", "--socket", node.socket().toString(), target.toString());
                }
            }
        }
    }

    @Test
    void wellFormedHostileRequestsCostTheRegistryAtMostATocAndTheNodeStaysUp() throws Exception {
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            Image mounted = image(client, registry, "public", 3);
            Image never = image(client, registry, "other", 4);
            InetSocketAddress peerPort = new InetSocketAddress("127.0.0.1", DaemonConfig.freePortPair());
            Path target = dir.resolve("rootfs");
            try (DaemonProcess node = DaemonProcess.start(dir, "node", List.of("--peer-listen", "127.0.0.1:" + peerPort.getPort(),
                    "--cluster-id", CLUSTER, "--cache-size", "1G", "--no-store"))) {
                node.awaitReady();
                try {
                    assertEquals(0, StarlingCli.run("mount", "--socket", node.socket().toString(), mounted.ref().toString(),
                            target.toString()), node.log());
                    Files.readAllBytes(target.resolve("data/model.bin")); // local now: no background fetch is measured below
                    long before = registry.blobBytesServed();
                    Random random = new Random(20261206);
                    int requests = 0, refused = 0;
                    try (PeerClient peer = stranger(node, peerPort)) {
                        byte[] never256 = new byte[32];
                        random.nextBytes(never256);
                        // the report's request: a real blob, a digest that can never verify, a 64 MiB span
                        PeerException.Refused r = refusal(peer.request(mounted.where(),
                                List.of(new Frame.ChunkRef(0, 64 << 20, 0, 64 << 20, never256)), Duration.ofSeconds(10)));
                        assertEquals(Frame.ErrorCode.BAD_REQUEST, r.code(), r.getMessage());
                        for (int i = 0; i < 300; i++) {
                            Image which = random.nextBoolean() ? mounted : never;
                            String blob = random.nextInt(4) == 0 ? "sha256:" + hex(random, 32) : which.blob();
                            String toc = random.nextInt(4) == 0 ? "sha256:" + hex(random, 32) : which.layer().tocDigest();
                            long offset = random.nextInt(4) == 0 ? random.nextLong(1L << 40) : random.nextInt(1 << 20);
                            int size = 1 + random.nextInt(64 << 20);
                            byte[] sha = new byte[32];
                            random.nextBytes(sha);
                            List<Frame.ChunkRef> refs = new ArrayList<>();
                            for (int k = 1 + random.nextInt(1024); k > 0; k--) {
                                refs.add(new Frame.ChunkRef(offset, offset + 1 + random.nextInt(64 << 20), random.nextInt(1 << 20),
                                        size, sha));
                            }
                            Frame.Locator where = new Frame.Locator(random.nextInt(8) == 0 ? "evil.example:5000" : registry.host(),
                                    which.ref().repository(), blob, toc, random.nextBoolean(), random.nextInt(4) == 0, offset,
                                    random.nextInt(Integer.MAX_VALUE));
                            requests++;
                            try {
                                List<byte[]> answers = peer.request(where, refs, Duration.ofSeconds(10)).get(20, TimeUnit.SECONDS);
                                throw new AssertionError("a hostile request was answered: " + answers.size() + " chunks");
                            } catch (ExecutionException e) {
                                assertInstanceOf(PeerException.Refused.class, e.getCause(), "request " + i + ": " + e.getCause());
                                refused++;
                            }
                        }
                    }
                    long egress = registry.blobBytesServed() - before;
                    assertEquals(requests, refused);
                    assertTrue(egress <= 256 << 10, "300 hostile requests cost the registry " + egress
                            + " bytes: the other blob's footer and TOC at most, no span");
                    JsonNode status = node.status();
                    assertEquals(0, status.path("bytesFilledForPeers").asLong(), status.toPrettyString());
                    assertTrue(status.path("memory").path("heapUsedBytes").asLong() < 400L << 20,
                            "no allocation a peer chose: " + status.path("memory"));
                    assertEquals("the private marker of public\n", Files.readString(target.resolve("data/secret.txt")),
                            "and the node serves its own reads as before");

                    // slow and many: one address cannot hold many connections, nor a frame open for long
                    List<Socket> sockets = new ArrayList<>();
                    try {
                        for (int i = 0; i < 40; i++) {
                            sockets.add(new Socket(peerPort.getAddress(), peerPort.getPort()));
                        }
                        Thread.sleep(500);
                        int open = 0;
                        for (Socket s : sockets) {
                            s.setSoTimeout(50);
                            try {
                                open += s.getInputStream().read() < 0 ? 0 : 1;
                            } catch (java.net.SocketTimeoutException stillOpen) {
                                open++;
                            } catch (java.net.SocketException reset) {
                                // closed
                            }
                        }
                        assertTrue(open <= 16, "at most 16 connections from one address stay open, not " + open);
                    } finally {
                        for (Socket s : sockets) {
                            s.close();
                        }
                    }
                    try (Socket slow = new Socket(peerPort.getAddress(), peerPort.getPort())) {
                        OutputStream out = slow.getOutputStream();
                        out.write(new byte[] {0, 0, 0, 40, 0x01}); // HELLO // a frame that never completes
                        out.flush();
                        slow.setSoTimeout(20_000);
                        long t0 = System.nanoTime();
                        int got;
                        try {
                            got = slow.getInputStream().read();
                        } catch (java.net.SocketException reset) {
                            got = -1;
                        }
                        assertEquals(-1, got, "the trickling connection is closed");
                        assertTrue((System.nanoTime() - t0) / 1e9 < 15, "within the frame deadline (10 s)");
                    }
                    assertTrue(node.status().path("refusedPeerConnections").asLong() >= 25, node.status().toPrettyString());
                    assertTrue(node.isAlive());
                } finally {
                    StarlingCli.run("umount", "--socket", node.socket().toString(), target.toString());
                }
            }
        }
    }

    static String hex(Random random, int bytes) {
        byte[] b = new byte[bytes];
        random.nextBytes(b);
        return java.util.HexFormat.of().formatHex(b);
    }

    @Test
    void aMemberAnsweringWithMoreBytesThanAskedIsQuarantinedAndTheReadGoesOn() throws Exception {
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            ImageReference ref = registry.ref("liar/model:v1");
            byte[] model = pushModel(client, ref, 7);
            int nodePort = DaemonConfig.freePortPair();
            int liarPort = DaemonConfig.freePortPair();
            String liarId = "127.0.0.1:" + liarPort;
            // the liar: 8 MiB for every chunk it is asked for, whatever its size
            ChunkProvider liar = (from, request) -> CompletableFuture.completedFuture(
                    request.chunks().stream().map(c -> new byte[8 << 20]).toList());
            Path target = dir.resolve("rootfs");
            try (PeerServer liarServer = PeerServer.start(new InetSocketAddress("127.0.0.1", liarPort),
                    PeerServer.Settings.defaults(CLUSTER, liarId), liar);
                 AtomixMembership liarMember = new AtomixMembership(CLUSTER, new Member(liarId,
                         new InetSocketAddress("127.0.0.1", liarPort), ""), new InetSocketAddress("127.0.0.1", liarPort + 1),
                         () -> List.of(new InetSocketAddress("127.0.0.1", nodePort + 1)), Duration.ofMillis(500),
                         Duration.ofSeconds(2)).start(Duration.ofSeconds(30));
                 DaemonProcess node = DaemonProcess.start(dir, "node", List.of("--peer-listen", "127.0.0.1:" + nodePort,
                         "--join", "127.0.0.1:" + nodePort + "," + liarId, "--cluster-id", CLUSTER, "--cache-size", "1G",
                         "--no-store"))) {
                node.awaitReady();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (node.status().path("members").size() < 2 && System.nanoTime() < deadline) {
                    Thread.sleep(100);
                }
                assertEquals(2, node.status().path("members").size(), "the liar is a member: " + node.status().path("members"));
                try {
                    assertEquals(0, StarlingCli.run("mount", "--socket", node.socket().toString(), ref.toString(), target.toString()),
                            node.log());
                    long t0 = System.nanoTime();
                    assertArrayEquals(model, Files.readAllBytes(target.resolve("models/model.bin")));
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    JsonNode status = node.status();
                    assertEquals(liarId, status.path("quarantined").path(0).asText(), status.toPrettyString());
                    assertTrue(status.path("peerFallbacks").path("violation").asLong() >= 1, status.path("peerFallbacks").toString());
                    assertTrue(seconds < 10, "the liar cost one answer, not a timeout per span: " + seconds + " s");
                    assertNotEquals(0, liarServer.bytesServed(), "it was asked, and lied");
                } finally {
                    StarlingCli.run("umount", "--socket", node.socket().toString(), target.toString());
                }
            }
        }
    }

    @Test
    void withTlsAndClusterAccessMembersSharePrivateImagesAndAStrangerIsNeitherServedNorAMember() throws Exception {
        dev.starling.protocol.ClusterCertificates certs = new dev.starling.protocol.ClusterCertificates(
                Files.createDirectories(dir.resolve("pki"))).ca("cluster-ca").node("node0", "cluster-ca").node("node1", "cluster-ca");
        Path password = Files.writeString(dir.resolve("pki/password"), dev.starling.protocol.ClusterCertificates.PASSWORD + "\n");
        List<DaemonProcess> nodes = new ArrayList<>();
        List<Path> targets = List.of(dir.resolve("rootfs0"), dir.resolve("rootfs1"));
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.HTPASSWD);
             RegistryClient client = new RegistryClient(RegistryClient.Settings.defaults().withCredentials(
                     CredentialProvider.of(registry.host(), Credentials.basic(LocalRegistry.USER, LocalRegistry.PASSWORD))))) {
            ImageReference ref = registry.ref("private/model:v1");
            byte[] model = pushModel(client, ref, 9);
            Path docker = Files.createDirectories(dir.resolve("docker"));
            Files.writeString(docker.resolve("config.json"), "{\"auths\":{\"" + registry.host() + "\":{\"auth\":\""
                    + Base64.getEncoder().encodeToString((LocalRegistry.USER + ":" + LocalRegistry.PASSWORD).getBytes()) + "\"}}}");
            List<String> addresses = List.of("127.0.0.1:" + DaemonConfig.freePortPair(), "127.0.0.1:" + DaemonConfig.freePortPair());
            for (int i = 0; i < 2; i++) {
                nodes.add(DaemonProcess.start(dir, "node" + i, List.of("--peer-listen", addresses.get(i), "--join",
                        String.join(",", addresses), "--cluster-id", CLUSTER, "--cache-size", "1G", "--no-store",
                        "--tls-keystore", certs.path("node" + i + ".p12").toString(),
                        "--tls-truststore", certs.path("cluster-ca-trust.p12").toString(),
                        "--tls-password-file", password.toString(), "--peer-access", "cluster"),
                        Map.of("DOCKER_CONFIG", docker.toString())));
            }
            for (DaemonProcess n : nodes) {
                n.awaitReady();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (n.status().path("members").size() < 2 && System.nanoTime() < deadline) {
                    Thread.sleep(100);
                }
                assertEquals(2, n.status().path("members").size(), "membership over TLS: " + n.log());
            }
            int strangerPort = DaemonConfig.freePortPair();
            try (AtomixMembership stranger = new AtomixMembership(CLUSTER, new Member("127.0.0.1:" + strangerPort,
                    new InetSocketAddress("127.0.0.1", strangerPort), ""), new InetSocketAddress("127.0.0.1", strangerPort + 1),
                    () -> List.of(new InetSocketAddress("127.0.0.1", Integer.parseInt(addresses.get(0).split(":")[1]) + 1)),
                    Duration.ofMillis(500), Duration.ofSeconds(2)).start(Duration.ofSeconds(30))) {
                for (int i = 0; i < 2; i++) {
                    assertEquals(0, StarlingCli.run("mount", "--socket", nodes.get(i).socket().toString(), ref.toString(),
                            targets.get(i).toString()), nodes.get(i).log());
                }
                long before = registry.blobBytesServed();
                assertArrayEquals(model, Files.readAllBytes(targets.get(0).resolve("models/model.bin")));
                assertArrayEquals(model, Files.readAllBytes(targets.get(1).resolve("models/model.bin")));
                long egress = registry.blobBytesServed() - before;
                assertTrue(egress < model.length * 1.3, "two members read a private 24 MiB file; the registry served " + egress);
                JsonNode second = nodes.get(1).status();
                assertTrue(second.path("fetched").path("peerBytes").asLong() > 0, "the members shared it: " + second.toPrettyString());
                for (DaemonProcess n : nodes) {
                    JsonNode members = n.status().path("members");
                    assertEquals(2, members.size(), "a stranger without a certificate is no member: " + members);
                    assertEquals(0, n.status().path("forbiddenPeerRequests").asLong());
                }
                InetSocketAddress peerPort = new InetSocketAddress("127.0.0.1", Integer.parseInt(addresses.get(0).split(":")[1]));
                assertThrows(PeerException.class, () -> PeerClient.connect(peerPort, CLUSTER, "stranger", Duration.ofSeconds(3),
                        null, FrameCodec.DEFAULT_MAX_FRAME).close(), "nor served: its connection fails the TLS handshake");
            } finally {
                for (int i = 0; i < 2; i++) {
                    StarlingCli.run("umount", "--socket", nodes.get(i).socket().toString(), targets.get(i).toString());
                }
            }
        } finally {
            for (DaemonProcess n : nodes) {
                n.close();
            }
        }
    }
}
