package dev.starling.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starling.daemon.DaemonConfig;
import dev.starling.daemon.DaemonProcess;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.LocalRegistryServer;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Debian's podman (the containers/storage path CRI-O takes) pulling and running images through the
 * daemon's Additional Layer Store, against a real registry: the eStargz layer is never downloaded,
 * the container reads its files lazily, a plain image still pulls and runs, two daemons share the
 * layer's chunks, and pull/run/rmi cycles hold nothing for long.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class PodmanStoreTest {
    private static final String SCRIPT = "cat /data/hello.txt; md5sum /data/model.bin";

    @TempDir
    Path dir;

    private LocalRegistry registry;
    private final List<DaemonProcess> daemons = new ArrayList<>();
    private ImageReference lazy;
    private ImageReference plain;
    private String layerDigest;
    private long layerSize;
    private String expected;

    @BeforeEach
    void pushImages() throws Exception {
        Path tree = EStargzImages.busyboxTree(dir.resolve("tree"), "sh", "cat", "md5sum");
        Files.createDirectories(tree.resolve("data"));
        Files.writeString(tree.resolve("data/hello.txt"), "hello from the layer store\n");
        byte[] model = new byte[6 << 20];
        new Random(11).nextBytes(model);
        Files.write(tree.resolve("data/model.bin"), model);
        expected = "hello from the layer store\n"
                + HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(model)) + "  /data/model.bin\n";
        EStargzImages.Layer esgz = EStargzImages.convert(tree, dir.resolve("layer.esgz"), ConvertOptions.defaults());
        EStargzImages.Layer gzip = EStargzImages.plain(tree, dir.resolve("layer.tar.gz"));
        layerDigest = Manifest.sha256(Files.readAllBytes(esgz.blob()));
        layerSize = Files.size(esgz.blob());
        registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
        lazy = registry.ref("store/app:esgz");
        plain = registry.ref("store/app:plain");
        try (RegistryClient client = RegistryClient.anonymous()) {
            EStargzImages.push(client, lazy, List.of(esgz));
            EStargzImages.push(client, plain, List.of(gzip));
        }
    }

    @AfterEach
    void stop() throws Exception {
        for (Podman p : podmans) {
            p.close();
        }
        for (DaemonProcess d : daemons) {
            d.close();
        }
        if (registry != null) {
            registry.close();
        }
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
        assertTrue(!mountinfo.contains(dir.toString()), "nothing left mounted under " + dir + ":\n" + mountinfo);
    }

    private final List<Podman> podmans = new ArrayList<>();

    private Podman podman(Path podmanDir, Path store) throws IOException {
        Podman p = new Podman(podmanDir, store, registry.host());
        podmans.add(p);
        return p;
    }

    private DaemonProcess daemon(String name, String peerListen, List<String> join) throws Exception {
        List<String> options = new ArrayList<>(List.of("--peer-listen", peerListen, "--cluster-id", "store-test", "--cache-size", "1G", "--store", dir.resolve(name + "-store").toString(),
                "--store-ttl", "1s", "--insecure-registry", registry.host(), "--allow-registry", registry.host()));
        if (!join.isEmpty()) {
            options.addAll(List.of("--join", String.join(",", join)));
        }
        DaemonProcess d = DaemonProcess.start(dir, name, options);
        daemons.add(d);
        return d.awaitReady();
    }

    /** The GETs of {@code digest}'s bytes logged from request {@code from} on, by clients whose user agent starts with {@code agent}. */
    private List<LocalRegistryServer.Request> blobGets(String digest, int from, String agent) throws IOException {
        List<LocalRegistryServer.Request> requests = registry.requests();
        return requests.subList(from, requests.size()).stream()
                .filter(r -> r.isBlobGet(digest) && r.userAgent().startsWith(agent)).toList();
    }

    private static JsonNode storeLayer(DaemonProcess d, String key) throws IOException {
        for (JsonNode l : d.status().path("store").path("layers")) {
            if (l.path("key").asText().equals(key)) {
                return l;
            }
        }
        return null;
    }

    @Test
    void podmanRunsTheImageFromTheStoreWithoutDownloadingItsLayer() throws Exception {
        DaemonProcess node = daemon("node", "127.0.0.1:" + DaemonConfig.freePortPair(), List.of());
        Path store = dir.resolve("node-store");
        Podman podman = podman(dir.resolve("podman"), store);

        podman.ok("pull", lazy.toString());
        assertEquals(List.of(), blobGets(layerDigest, 0, "containers/"), "podman downloaded none of the eStargz layer");
        JsonNode held = storeLayer(node, layerDigest); // podman 4.3 keys the store by the compressed layer digest
        assertTrue(held != null && held.path("users").asInt() >= 1, "the store holds the layer for podman's storage: "
                + node.status().path("store"));

        assertEquals(expected, podman.ok("run", "--rm", lazy.toString(), "sh", "-c", SCRIPT),
                "the container reads the image's files through the store");
        Path diff;
        try (Stream<Path> layers = Files.list(podman.graphRoot().resolve("overlay"))) {
            diff = layers.map(l -> l.resolve("diff")).filter(Files::isSymbolicLink).findFirst().orElseThrow(
                    () -> new AssertionError("no layer of podman's storage links into the store"));
        }
        assertTrue(Files.readSymbolicLink(diff).startsWith(store), "podman's layer is a link into our store: "
                + Files.readSymbolicLink(diff));
        JsonNode served = node.status().path("layers").get(0).path("bytesServed");
        assertTrue(served.path("memory").asLong() + served.path("disk").asLong() + served.path("registry").asLong() >= 6 << 20,
                "the bytes the container read through the store show in status: " + served);
        JsonNode memory = node.status().path("memory");
        assertTrue(memory.path("residentBytes").asLong() > 32 << 20 && memory.path("heapMaxBytes").asLong() == 512L << 20
                && memory.path("memoryTierMaxBytes").asLong() == 48L << 20, "status shows the daemon's memory: " + memory);
        assertTrue(memory.path("memoryTierBytes").asLong() < 8 << 20, "the chunks the container read left the memory tier "
                + "(the page cache has them): " + memory);

        podman.ok("pull", plain.toString()); // not eStargz: the store says ENOENT and podman pulls it itself
        String plainLayer = registry.requests().stream().filter(r -> r.method().equals("GET") && r.uri().contains("/blobs/")
                && r.userAgent().startsWith("containers/") && r.written() > 1 << 20).map(r -> r.uri()).findFirst().orElse(null);
        assertTrue(plainLayer != null, "podman downloaded the plain layer itself: " + registry.requests());
        assertEquals(expected, podman.ok("run", "--rm", plain.toString(), "sh", "-c", SCRIPT), "and runs it");

        podman.ok("rmi", lazy.toString(), plain.toString());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while ((!node.status().path("store").path("layers").isEmpty() || !node.status().path("layers").isEmpty())
                && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertEquals(0, node.status().path("store").path("layers").size(), "rmi and the TTL release the layer: " + node.status());
        assertEquals(0, node.status().path("layers").size(), "and the node closes it: " + node.status());
    }

    @Test
    void onASecondNodeTheLayerComesFromTheFirstNotTheRegistry() throws Exception {
        List<String> addresses = List.of("127.0.0.1:" + DaemonConfig.freePortPair(), "127.0.0.1:" + DaemonConfig.freePortPair());
        DaemonProcess first = daemon("first", addresses.get(0), addresses);
        DaemonProcess second = daemon("second", addresses.get(1), addresses);
        for (DaemonProcess d : List.of(first, second)) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (d.status().path("members").size() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertEquals(2, d.status().path("members").size(), "the two see each other: " + d.log());
        }
        Podman one = podman(dir.resolve("podman-first"), dir.resolve("first-store"));
        one.ok("pull", "-q", lazy.toString());
        assertEquals(expected, one.ok("run", "--rm", lazy.toString(), "sh", "-c", SCRIPT));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60); // the first node's background fetch completes
        while (first.status().path("layers").get(0).path("fetchedPercent").asDouble() < 100 && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertEquals(100, first.status().path("layers").get(0).path("fetchedPercent").asDouble(), 0.001, first.status().toString());

        int mark = registry.requests().size();
        Podman two = podman(dir.resolve("podman-second"), dir.resolve("second-store"));
        two.ok("pull", "-q", lazy.toString());
        assertEquals(expected, two.ok("run", "--rm", lazy.toString(), "sh", "-c", SCRIPT),
                "the second node runs the image: " + second.log());
        long fromRegistry = blobGets(layerDigest, mark, "starling/").stream().mapToLong(LocalRegistryServer.Request::written).sum();
        assertEquals(List.of(), blobGets(layerDigest, mark, "containers/"), "podman downloaded nothing");
        assertTrue(fromRegistry < layerSize / 10, "the second node took only the footer and TOC from the registry, "
                + fromRegistry + " of " + layerSize + " bytes");
        // The node's figures, not the layer's: the 1 s TTL may have reopened it. The second node owns
        // about half the chunks and may have fetched them already, for the first node's background fetch.
        JsonNode status = second.status();
        assertTrue(status.path("fetched").path("peerBytes").asLong() > 0 || status.path("bytesFilledForPeers").asLong() > 0,
                "its chunks came from the first node, or it fetched them for the first as their owner: " + status);
        long allFromRegistry = blobGets(layerDigest, 0, "starling/").stream().mapToLong(LocalRegistryServer.Request::written).sum();
        assertTrue(allFromRegistry < layerSize * 5 / 4, "the layer left the registry about once for the two nodes: "
                + allFromRegistry + " bytes for a " + layerSize + "-byte layer");
    }

    @Test
    void fiftyPullRunRmiCyclesHoldNothingForLong() throws Exception {
        DaemonProcess node = daemon("node", "127.0.0.1:" + DaemonConfig.freePortPair(), List.of());
        Podman podman = podman(dir.resolve("podman"), dir.resolve("node-store"));
        int maxOpen = 0;
        int maxHeld = 0;
        long storeMounts = 0;
        for (int cycle = 0; cycle < 50; cycle++) {
            podman.ok("pull", "-q", lazy.toString());
            assertEquals("hello from the layer store\n", podman.ok("run", "--rm", lazy.toString(), "cat", "/data/hello.txt"));
            podman.ok("rmi", lazy.toString());
            JsonNode status = node.status();
            maxOpen = Math.max(maxOpen, status.path("layers").size());
            maxHeld = Math.max(maxHeld, status.path("store").path("layers").size());
            String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
            long mounts = mountinfo.lines().filter(l -> l.contains(dir.toString())).count();
            storeMounts = Math.max(storeMounts, mounts);
        }
        System.out.printf("50 pull/run/rmi cycles: at most %d open layer(s), %d store layer(s), %d mount(s) under the test dir%n",
                maxOpen, maxHeld, storeMounts);
        assertTrue(maxOpen <= 1 && maxHeld <= 2, "one image's layer, by its two keys at most: open " + maxOpen + ", held " + maxHeld);
        assertEquals(1, storeMounts, "one FUSE mount, the store, whatever podman does");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!node.status().path("layers").isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertEquals(0, node.status().path("layers").size(), "the TTL releases the layer after the last rmi: " + node.status());
    }
}
