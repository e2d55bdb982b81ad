package dev.starling.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starling.cli.StarlingCli;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The layers every Python image is made of: 20,000 small files, one gzip member each or several
 * per member, read at once by three `starling daemon` processes through their mounts. Peers must
 * serve them (a span of small files is more chunks than one request may carry): the registry
 * serves about one layer for the three, background fetch included, and no peer refuses a request.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class SmallFileClusterTest {
    static final int FILES = 20_000;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "min chunk size {0}")
    @ValueSource(ints = {0, 64 << 10})
    void threeDaemonsReadALayerOfTwentyThousandSmallFilesThatLeavesTheRegistryAboutOnce(int minChunkSize) throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree/site-packages"));
        List<Path> files = ClusterFiles.smallFiles(tree, FILES, minChunkSize + 1);
        String want = ClusterFiles.digest(tree, files);
        EStargzImages.Layer layer = EStargzImages.convert(dir.resolve("tree"), dir.resolve("layer.esgz"),
                ConvertOptions.defaults().withMinChunkSize(minChunkSize));
        long blobSize = Files.size(layer.blob());
        long tocBytes = dev.starling.estargz.EStargzBlob.readToc(dev.starling.estargz.RangeReader.open(layer.blob()),
                dev.starling.estargz.ReaderLimits.DEFAULT).compressed().length; // each node reads it from the registry
        List<DaemonProcess> daemons = new ArrayList<>();
        List<Path> targets = new ArrayList<>();
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            ImageReference image = registry.ref("python/site-packages:v1");
            EStargzImages.push(client, image, List.of(layer));
            // as a node's daemon.yaml says: the cluster's registry is one a node fills from for peers,
            // before it has mounted an image of its own from there
            DaemonProcess.startCluster(dir, 3, List.of("--cluster-id", "small", "--cache-size", "1G", "--no-store",
                    "--allow-registry", registry.host()), daemons);
            for (int i = 0; i < 3; i++) {
                targets.add(dir.resolve("rootfs" + i));
            }
            long before = registry.blobBytesServed();
            for (int i = 0; i < 3; i++) {
                assertEquals(0, StarlingCli.run("mount", "--socket", daemons.get(i).socket().toString(), image.toString(),
                        targets.get(i).toString()), daemons.get(i).log());
            }
            List<CompletableFuture<String>> reads = new ArrayList<>();
            for (Path target : targets) { // the three at once, as in a scale-out
                reads.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        return ClusterFiles.digest(target.resolve("site-packages"), files);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }));
            }
            for (int i = 0; i < 3; i++) {
                assertEquals(want, reads.get(i).get(200, TimeUnit.SECONDS), "node " + i + " read every file right");
            }
            for (DaemonProcess d : daemons) { // and let background fetch make the layer local everywhere
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (d.status().path("layers").path(0).path("fetchedPercent").asDouble() < 100 && System.nanoTime() < deadline) {
                    Thread.sleep(200);
                }
            }
            long egress = registry.blobBytesServed() - before;
            StringBuilder perNode = new StringBuilder();
            List<JsonNode> statuses = new ArrayList<>();
            for (DaemonProcess d : daemons) {
                JsonNode s = d.status();
                statuses.add(s);
                perNode.append(String.format("%n  %s: registry %d, peers %d, fallbacks %s", s.path("node").asText(),
                        s.path("fetched").path("registryBytes").asLong(), s.path("fetched").path("peerBytes").asLong(),
                        s.path("peerFallbacks")));
            }
            System.out.printf("min chunk size %d: the registry served %.2fx the layer for three nodes, %.2fx without their "
                    + "TOCs%s%n", minChunkSize, egress / (double) blobSize, (egress - 3 * tocBytes) / (double) blobSize, perNode);
            // each node reads the layer's TOC from the registry itself (about 1 MB here, 3 % of the layer); the chunks,
            // the layer's bytes, must leave the registry about once for the three
            assertTrue(egress - 3 * tocBytes <= blobSize * 1.1, String.format("three nodes read a %d-byte layer of %d files; "
                    + "the registry served %d bytes (%.2fx), background fetch and each node's TOC (%d bytes) included:%s",
                    blobSize, FILES, egress, egress / (double) blobSize, tocBytes, perNode));
            for (int i = 0; i < 3; i++) {
                for (String reason : List.of("refused", "violation", "forbidden", "unreachable", "private", "timeout", "miss")) {
                    assertEquals(0, statuses.get(i).path("peerFallbacks").path(reason).asLong(), reason + " fallbacks:"
                            + perNode + "\n" + daemons.get(i).log());
                }
            }
        } finally {
            for (DaemonProcess d : daemons) {
                d.close();
            }
            for (Path t : targets) {
                StarlingCli.run("umount", t.toString());
            }
        }
    }
}
