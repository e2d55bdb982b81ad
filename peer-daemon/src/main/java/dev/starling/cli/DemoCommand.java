package dev.starling.cli;

import dev.starling.estargz.Annotations;
import dev.starling.convert.ImageConverter;
import dev.starling.estargz.BlobVerifier;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.EntryType;
import dev.starling.estargz.TocNode;
import dev.starling.estargz.tar.TarWriter;
import dev.starling.daemon.Daemon;
import dev.starling.daemon.DaemonConfig;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.fetch.RegistryRangeReader;
import dev.starling.mount.ImageMount;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistryServer;
import dev.starling.registry.Manifest;
import dev.starling.registry.MediaTypes;
import dev.starling.registry.RegistryClient;
import java.net.InetSocketAddress;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code starling demo}: Starling's main job on an embedded default, with nothing to set up. It starts
 * a local registry, pushes a sample image (the running JDK's {@code lib/}, a realistic ~300 MB
 * layer), converts it to eStargz registry to registry, then opens the converted layer lazily over
 * HTTP Range requests: footer and TOC only, checked against the manifest's TOC digest, then one file
 * (only its chunk is fetched), then mounts the image (FUSE + overlayfs) and reads the file through
 * the mount, then verifies every chunk. Later stages add prefetch, background fetch and peers.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run Starling's main job on an embedded default: a local registry, a sample image "
                + "converted to eStargz and read lazily (no set-up needed).")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--work-dir", description = "where to keep the registry and sample files (default: a temp dir, removed after)")
    Path workDir;

    @Option(names = "--keep", description = "keep the work directory")
    boolean keep;

    @Option(names = "--sample", paramLabel = "DIR",
            description = "directory to use as the sample image's layer (default: the running JDK's lib/)")
    Path sample;

    @Override
    public Integer call() throws Exception {
        Path dir = workDir != null ? Files.createDirectories(workDir) : Files.createTempDirectory("starling-demo-");
        try {
            if (!LocalRegistryServer.installed()) {
                System.err.println("starling: the demo starts a local registry: install Debian's docker-registry "
                        + "(bin/install-deps does) and run it again");
                return 1;
            }
            return run(dir);
        } finally {
            if (workDir == null && !keep) {
                dev.starling.fuse.MountTable.deleteTree(dir);
            } else {
                System.out.println("work directory kept: " + dir);
            }
        }
    }

    private int run(Path dir) throws Exception {
        Path registryDir = Files.createDirectories(dir.resolve("registry"));
        try (LocalRegistryServer registry = LocalRegistryServer.start(registryDir, "");
             RegistryClient client = RegistryClient.anonymous()) {
            System.out.println("1. local registry at " + registry.host() + " (docker-registry, storage in " + registryDir + ")");
            ImageReference source = registry.ref("demo/jdk:latest");
            long t0 = System.nanoTime();
            Path tree = sample != null ? sample : Path.of(System.getProperty("java.home"), "lib");
            long layerBytes = pushSampleImage(client, source, dir, tree);
            System.out.printf("2. pushed %s: one %s layer (%s as opt/jdk/lib/, tar.gz) in %.1f s%n", source,
                    Sizes.human(layerBytes), tree, seconds(t0));

            ImageReference converted = registry.ref("demo/jdk:esgz");
            System.out.println("3. convert " + source + " -> " + converted + " (eStargz, gzip 9, 4 MiB chunks, all cores)");
            t0 = System.nanoTime();
            ConvertListener listener = new ConvertListener();
            new ImageConverter(client, ConvertOptions.defaults(), dir, listener).convert(source, converted, null);
            System.out.printf("   done in %.1f s%n", seconds(t0));

            Manifest manifest = client.manifest(converted);
            Descriptor layer = manifest.layers().getFirst();
            String tocDigest = layer.annotations().get(Annotations.TOC_DIGEST);
            long servedBefore = registry.blobBytesServed();
            RegistryRangeReader remote = new RegistryRangeReader(client, converted, layer.digest().toString());
            t0 = System.nanoTime();
            EStargzBlob blob = EStargzBlob.open(remote, tocDigest);
            System.out.printf("4. open the layer lazily over HTTP: %d nodes indexed in %.0f ms; fetched %s of %s "
                            + "in %d range request(s); TOC checked against the manifest's %s%n",
                    blob.index().nodeCount(), (System.nanoTime() - t0) / 1e6, Sizes.human(remote.bytesRead()),
                    Sizes.human(remote.size()), remote.requests(), shortDigest(tocDigest));

            TocNode file = smallestFileOver(blob, 64 * 1024);
            long before = remote.bytesRead();
            byte[] content = blob.read(file, 0, (int) file.size());
            System.out.printf("5. read %s (%s): fetched %s more, verified against its chunk digest%n", file.path(),
                    Sizes.human(content.length), Sizes.human(remote.bytesRead() - before));

            mountAndRead(client, converted, dir, file.path(), content);

            t0 = System.nanoTime();
            BlobVerifier.Report report = BlobVerifier.verify(blob);
            System.out.printf("7. verify every chunk over HTTP: %s, %d files, %d chunks, %s in %.1f s%n",
                    report.ok() ? "OK" : "FAILED", report.files(), report.chunks(), Sizes.human(report.bytes()),
                    seconds(t0));
            report.problems().forEach(p -> System.out.println("   " + p));
            System.out.printf("   registry egress for steps 4-7 (its access log): %s%n",
                    Sizes.human(registry.blobBytesServed() - servedBefore));
            boolean clusterOk = cluster(client, registry, converted, dir, largestFile(blob), remote.size());
            return report.ok() && clusterOk ? 0 : 1;
        }
    }

    /**
     * Step 8: three node daemons on loopback (own roots, sockets and peer ports, one process here),
     * each mounting the image and reading the same file: each span leaves the registry about once,
     * the rest goes between the nodes.
     */
    private static boolean cluster(RegistryClient client, LocalRegistryServer registry, ImageReference image, Path dir,
                                   TocNode file, long blobSize) throws IOException {
        if (!Privileges.canMount()) {
            System.out.println("8. skipped: the cluster mounts need root; run `sudo bin/starling demo`");
            return true;
        }
        List<InetSocketAddress> addresses = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            addresses.add(new InetSocketAddress("127.0.0.1", DaemonConfig.freePortPair()));
        }
        System.out.printf("8. a cluster of 3 daemons on loopback (peers %s), each mounting %s and reading %s (%s):%n",
                addresses.stream().map(a -> Integer.toString(a.getPort())).toList(), image, file.path(),
                Sizes.human(file.size()));
        List<Daemon> daemons = new ArrayList<>();
        java.util.logging.Logger.getLogger("dev.starling.daemon").setLevel(java.util.logging.Level.WARNING); // the demo says it itself
        long before = registry.blobBytesServed();
        boolean same = true;
        try {
            for (int i = 0; i < 3; i++) {
                Path root = Files.createDirectories(dir.resolve("node" + i));
                daemons.add(Daemon.start(new DaemonConfig(root, root.resolve("starling.sock"), addresses.get(i), addresses,
                        "", "demo", Set.of(registry.host()), 1L << 30), client));
            }
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
            while (daemons.stream().anyMatch(d -> d.status().path("members").size() < 3) && System.nanoTime() < deadline) {
                sleep(100); // membership (SWIM) converges in a second or two
            }
            byte[] first = null;
            for (int i = 0; i < 3; i++) {
                Path target = dir.resolve("node" + i).resolve("rootfs");
                long t0 = System.nanoTime();
                daemons.get(i).mountImage(image.toString(), target);
                byte[] read = Files.readAllBytes(target.resolve(file.path()));
                double seconds = seconds(t0);
                first = first == null ? read : first;
                same &= java.util.Arrays.equals(first, read);
                com.fasterxml.jackson.databind.JsonNode layer = daemons.get(i).status().path("layers").get(0);
                System.out.printf("   node %d: mounted and read in %.2f s; %s from peers, %s from the registry%n", i,
                        seconds, Sizes.human(layer.path("peerBytes").asLong()), Sizes.human(layer.path("fetchedBytes").asLong()));
            }
        } finally {
            for (Daemon d : daemons) {
                try {
                    d.close();
                } catch (RuntimeException e) {
                    System.err.println("   stopping a daemon: " + e);
                    if (System.getenv("STARLING_DEBUG") != null) {
                        e.printStackTrace();
                    }
                }
            }
        }
        long egress = registry.blobBytesServed() - before;
        System.out.printf("   registry egress for the 3 nodes, background fetch included: %s, %.2fx the layer (%s); "
                        + "without peers each node would fetch it all: 3x; %s%n",
                Sizes.human(egress), egress / (double) blobSize, Sizes.human(blobSize),
                same ? "every node read the same bytes" : "NODES READ DIFFERENT BYTES");
        return same;
    }

    /** The layer's largest regular file: what the cluster step reads on every node. */
    private static TocNode largestFile(EStargzBlob blob) {
        TocNode best = null;
        for (int id = 0; id < blob.index().nodeCount(); id++) {
            TocNode n = blob.index().node(id);
            if (n.type() == dev.starling.estargz.EntryType.REG && (best == null || n.size() > best.size())) {
                best = n;
            }
        }
        return best;
    }

    /** Step 6: the image mounted lazily (FUSE per layer, overlayfs on top), one file read through it. */
    private static void mountAndRead(RegistryClient client, ImageReference image, Path dir, String path, byte[] expected)
            throws IOException {
        if (!Privileges.canMount()) {
            System.out.println("6. skipped: mounting needs root (FUSE and overlayfs); run `sudo bin/starling demo`");
            return;
        }
        Path rootfs = dir.resolve("rootfs");
        long t0 = System.nanoTime();
        try (ImageMount mount = ImageMount.mount(client, image, Descriptor.Platform.parse("linux/amd64"), rootfs,
                Files.createDirectories(dir.resolve("layers")),
                new dev.starling.fetch.DiskChunkCache(dir.resolve("chunks"), 1L << 30))) {
            System.out.printf("6. mount %s at %s: ready in %.0f ms after fetching %s%n", image, rootfs,
                    (System.nanoTime() - t0) / 1e6, Sizes.human(mount.bytesAtReady()));
            long before = mount.bytesFetched();
            byte[] viaFuse = Files.readAllBytes(rootfs.resolve(path));
            System.out.printf("   cat %s through the mount: %s, %s fetched, %s%n", path, Sizes.human(viaFuse.length),
                    Sizes.human(mount.bytesFetched() - before),
                    java.util.Arrays.equals(viaFuse, expected) ? "same bytes" : "DIFFERENT BYTES");
            // Meanwhile the background fetch has been pulling the rest of the layer, so that the node
            // soon needs the registry no more; the state file shows how far it is.
            dev.starling.fetch.LayerReader layer = mount.layerReaders().getFirst();
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(120);
            while (!layer.backgroundState().equals("done") && System.nanoTime() < deadline) {
                sleep(100);
            }
            Path stateDir = rootfs.resolve(dev.starling.fuse.StateFile.DIRECTORY);
            try (var states = Files.list(stateDir)) {
                for (Path state : states.toList()) {
                    System.out.printf("   background fetch %s after %.1f s; cat %s:%n     %s", layer.backgroundState(),
                            (System.nanoTime() - t0) / 1e9, rootfs.relativize(state), Files.readString(state));
                }
            }
        }
    }

    private static void sleep(long millis) throws IOException {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted");
        }
    }

    /** Pushes a one-layer OCI image of the JDK's lib/; returns the layer's compressed size. */
    private static long pushSampleImage(RegistryClient client, ImageReference ref, Path dir, Path tree)
            throws IOException {
        Path layer = dir.resolve("layer.tar.gz");
        MessageDigest diffId = dev.starling.estargz.Digests.sha256();
        try (OutputStream file = new BufferedOutputStream(Files.newOutputStream(layer), 1 << 20);
             GZIPOutputStream gzip = new GZIPOutputStream(file, 1 << 16) {
                 {
                     def.setLevel(Deflater.BEST_SPEED);
                 }
             };
             TarWriter tar = new TarWriter(new DigestOutputStream(gzip, diffId))) {
            tar.addTree(tree, "opt/jdk/lib/");
        }
        String layerDigest = Manifest.sha256(Files.readAllBytes(layer));
        client.pushBlob(ref, layerDigest, layer, null);
        byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"JAVA_HOME=/opt/jdk\"]},"
                + "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" + HexFormat.of().formatHex(diffId.digest())
                + "\"]}}").getBytes(StandardCharsets.UTF_8);
        Path configFile = dir.resolve("config.json");
        Files.write(configFile, config);
        client.pushBlob(ref, Manifest.sha256(config), configFile, null);
        byte[] manifest = ("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_MANIFEST + "\",\"config\":{"
                + "\"mediaType\":\"" + MediaTypes.OCI_CONFIG + "\",\"digest\":\"" + Manifest.sha256(config) + "\",\"size\":"
                + config.length + "},\"layers\":[{\"mediaType\":\"" + MediaTypes.OCI_LAYER_GZIP + "\",\"digest\":\""
                + layerDigest + "\",\"size\":" + Files.size(layer) + "}]}").getBytes(StandardCharsets.UTF_8);
        client.pushManifest(ref, manifest, MediaTypes.OCI_MANIFEST);
        return Files.size(layer);
    }

    private static final class ConvertListener implements ImageConverter.Listener {
        private ProgressBar bar;

        @Override
        public void layerStarted(String platform, int index, int count, Descriptor layer) {
            bar = new ProgressBar("   layer " + (index + 1) + "/" + count);
        }

        @Override
        public void progress(long done, long total) {
            bar.update(done, total);
        }

        @Override
        public void layerDone(String platform, int index, Descriptor converted,
                              dev.starling.estargz.write.ConvertResult r) {
            bar.close();
            System.out.printf("   layer %d: %s, toc %s, diff id %s%n", index + 1, Sizes.human(converted.size()),
                    shortDigest(r.tocDigest()), shortDigest(r.diffId()));
        }
    }

    /** A file worth reading: the smallest one of at least {@code min} bytes (or the largest there is). */
    private static TocNode smallestFileOver(EStargzBlob blob, long min) {
        TocNode best = null;
        for (int id = 0; id < blob.index().nodeCount(); id++) {
            TocNode n = blob.index().node(id);
            if (n.type() != EntryType.REG || dev.starling.estargz.TocIndex.isLandmark(n)) {
                continue;
            }
            boolean better = best == null
                    || n.size() >= min && (best.size() < min || n.size() < best.size())
                    || best.size() < min && n.size() > best.size();
            if (better) {
                best = n;
            }
        }
        return best;
    }

    private static String shortDigest(String digest) {
        return digest.substring(0, Math.min(digest.length(), 19)) + "...";
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }
}
