package dev.starling.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starling.cli.StarlingCli;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.ReaderLimits;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A peer killed with -9 in the middle of a scale-out: three daemons read two images at once (a layer
 * of 20,000 small files and a 64 MiB model), and the first node dies once it has fetched a fifth
 * of them. The survivors read every file right, the spans the dead node owned are filled once by
 * their next owner rather than by each survivor, and the registry serves at most 1.3x the images
 * for the cluster, what the dead node fetched and background fetch included.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class PeerChurnTest {
    static final int FILES = 20_000;

    @TempDir
    Path dir;

    @Test
    void aPeerKilledMidReadCostsTheSurvivorsNoFailedReadAndTheRegistryAtMostOneAndAThirdImages() throws Exception {
        Path small = Files.createDirectories(dir.resolve("small/site-packages"));
        List<Path> smallFiles = ClusterFiles.smallFiles(small, FILES, 7);
        Path model = Files.createDirectories(dir.resolve("model/models"));
        byte[] weights = new byte[64 << 20];
        new Random(11).nextBytes(weights);
        Files.write(model.resolve("model.bin"), weights);
        List<Path> modelFiles = List.of(Path.of("model.bin"));
        String wantSmall = ClusterFiles.digest(small, smallFiles);
        String wantModel = ClusterFiles.digest(model, modelFiles);
        EStargzImages.Layer smallLayer = EStargzImages.convert(dir.resolve("small"), dir.resolve("small.esgz"),
                ConvertOptions.defaults());
        EStargzImages.Layer modelLayer = EStargzImages.convert(dir.resolve("model"), dir.resolve("model.esgz"),
                ConvertOptions.defaults());
        long imageBytes = Files.size(smallLayer.blob()) + Files.size(modelLayer.blob());
        long tocBytes = 0; // each node reads each layer's TOC from the registry itself
        for (Path blob : List.of(smallLayer.blob(), modelLayer.blob())) {
            tocBytes += EStargzBlob.readToc(RangeReader.open(blob), ReaderLimits.DEFAULT).compressed().length;
        }
        List<DaemonProcess> daemons = new ArrayList<>();
        List<Path> targets = new ArrayList<>();
        ExecutorService readers = Executors.newFixedThreadPool(6);
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            ImageReference smallImage = registry.ref("python/site-packages:v1");
            ImageReference modelImage = registry.ref("models/llm:v1");
            EStargzImages.push(client, smallImage, List.of(smallLayer));
            EStargzImages.push(client, modelImage, List.of(modelLayer));
            DaemonProcess.startCluster(dir, 3, List.of("--cluster-id", "churn", "--cache-size", "1G", "--no-store",
                    "--allow-registry", registry.host()), daemons);
            long before = registry.blobBytesServed();
            for (int i = 0; i < 3; i++) {
                for (ImageReference image : List.of(smallImage, modelImage)) {
                    Path target = dir.resolve("rootfs-" + i + "-" + image.repository().replace('/', '-'));
                    targets.add(target);
                    assertEquals(0, StarlingCli.run("mount", "--socket", daemons.get(i).socket().toString(), image.toString(),
                            target.toString()), daemons.get(i).log());
                }
            }
            List<CompletableFuture<String>> smallReads = new ArrayList<>();
            List<CompletableFuture<String>> modelReads = new ArrayList<>();
            for (int i = 0; i < 3; i++) { // all at once, as in a scale-out
                Path smallRoot = targets.get(2 * i).resolve("site-packages");
                Path modelRoot = targets.get(2 * i + 1).resolve("models");
                smallReads.add(CompletableFuture.supplyAsync(() -> digest(smallRoot, smallFiles), readers));
                modelReads.add(CompletableFuture.supplyAsync(() -> digest(modelRoot, modelFiles), readers));
            }
            DaemonProcess first = daemons.getFirst();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (fetched(first.status()) < imageBytes / 5 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            long firstFetched = fetched(first.status());
            first.kill();
            assertFalse(smallReads.get(1).isDone() && modelReads.get(1).isDone() && smallReads.get(2).isDone()
                    && modelReads.get(2).isDone(), "the survivors were still reading when the first node died");
            for (int i = 1; i < 3; i++) {
                assertEquals(wantSmall, smallReads.get(i).get(200, TimeUnit.SECONDS), "node " + i + " read every small file right");
                assertEquals(wantModel, modelReads.get(i).get(200, TimeUnit.SECONDS), "node " + i + " read the model right");
            }
            for (DaemonProcess d : daemons.subList(1, 3)) { // and background fetch made both layers local
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                while (!local(d.status()) && System.nanoTime() < until) {
                    Thread.sleep(200);
                }
                assertTrue(local(d.status()), d.status().toPrettyString());
            }
            long egress = registry.blobBytesServed() - before;
            StringBuilder perNode = new StringBuilder();
            for (DaemonProcess d : daemons.subList(1, 3)) {
                JsonNode s = d.status();
                perNode.append(String.format("%n  %s: registry %d, peers %d, fallbacks %s", s.path("node").asText(),
                        s.path("fetched").path("registryBytes").asLong(), s.path("fetched").path("peerBytes").asLong(),
                        s.path("peerFallbacks")));
            }
            double ratio = (egress - 3.0 * tocBytes) / imageBytes;
            System.out.printf("a node killed after fetching %d of %d bytes: the registry served %.2fx the images for the "
                    + "cluster (TOCs aside)%s%n", firstFetched, imageBytes, ratio, perNode);
            assertTrue(ratio <= 1.3, String.format("the registry served %d bytes for %d bytes of images (%.2fx, TOCs aside):%s",
                    egress, imageBytes, ratio, perNode));
        } finally {
            readers.shutdownNow();
            for (DaemonProcess d : daemons) {
                d.close();
            }
            for (Path t : targets) {
                StarlingCli.run("umount", t.toString());
            }
        }
    }

    private static String digest(Path root, List<Path> files) {
        try {
            return ClusterFiles.digest(root, files);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** The bytes the node has fetched, from the registry and from peers. */
    private static long fetched(JsonNode status) {
        return status.path("fetched").path("registryBytes").asLong() + status.path("fetched").path("peerBytes").asLong();
    }

    private static boolean local(JsonNode status) {
        JsonNode layers = status.path("layers");
        if (layers.size() < 2) {
            return false;
        }
        for (JsonNode l : layers) {
            if (l.path("fetchedPercent").asDouble() < 100) {
                return false;
            }
        }
        return true;
    }
}
