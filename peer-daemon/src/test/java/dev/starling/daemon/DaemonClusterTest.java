package dev.starling.daemon;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starling.cli.StarlingCli;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.RegistryClient;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three `starling daemon` processes on loopback (own ports, roots and sockets) and a real registry:
 * each mounts the same image through its daemon and reads the same file; the registry serves it
 * about once for the three; `kill -9` of a peer that served costs no failed read.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class DaemonClusterTest {

    @TempDir
    Path dir;

    @Test
    void threeDaemonsReadAnImageThatLeavesTheRegistryAboutOnce() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree/models"));
        byte[] model = new byte[24 << 20];
        new Random(3).nextBytes(model);
        Files.write(tree.resolve("model.bin"), model);
        Files.writeString(dir.resolve("tree/README"), "three nodes\n");
        EStargzImages.Layer layer = EStargzImages.convert(dir.resolve("tree"), dir.resolve("layer.esgz"), ConvertOptions.defaults());
        List<DaemonProcess> daemons = new ArrayList<>();
        List<Path> targets = new ArrayList<>();
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous()) {
            ImageReference image = registry.ref("cluster/model:v1");
            EStargzImages.push(client, image, List.of(layer));
            List<String> addresses = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                addresses.add("127.0.0.1:" + DaemonConfig.freePortPair());
            }
            int metricsPort = DaemonConfig.freePortPair();
            for (int i = 0; i < 3; i++) {
                List<String> options = new ArrayList<>(List.of("--peer-listen", addresses.get(i), "--join", String.join(",", addresses),
                        "--cluster-id", "test", "--cache-size", "1G", "--no-store"));
                if (i == 1) {
                    options.addAll(List.of("--metrics-listen", "127.0.0.1:" + metricsPort));
                }
                daemons.add(DaemonProcess.start(dir, "node" + i, options));
                targets.add(dir.resolve("rootfs" + i));
            }
            for (int i = 0; i < 3; i++) {
                daemons.get(i).awaitReady();
                assertEquals(0, StarlingCli.run("mount", "--socket", daemons.get(i).socket().toString(), image.toString(),
                        targets.get(i).toString()), "mount through daemon " + i + ": " + daemons.get(i).log());
            }
            for (DaemonProcess d : daemons) { // membership converges in a second or two; a scale-out starts after
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (d.status().path("members").size() < 3 && System.nanoTime() < deadline) {
                    Thread.sleep(100);
                }
                assertEquals(3, d.status().path("members").size(), "every daemon sees the three");
            }
            long before = registry.blobBytesServed();
            assertArrayEquals(model, Files.readAllBytes(targets.get(0).resolve("models/model.bin")));
            assertArrayEquals(model, Files.readAllBytes(targets.get(1).resolve("models/model.bin")));
            assertEquals("three nodes\n", Files.readString(targets.get(1).resolve("README")));
            long egress = registry.blobBytesServed() - before;
            daemons.get(0).kill(); // a peer that served, killed mid-scale-out
            registry.stop(); // and the registry gone, now that the nodes hold the chunks
            assertArrayEquals(model, Files.readAllBytes(targets.get(2).resolve("models/model.bin")),
                    "the third node reads everything though a peer died and the registry is down: " + daemons.get(2).log());
            assertEquals("three nodes\n", Files.readString(targets.get(2).resolve("README")));
            assertTrue(egress < model.length * 1.3, "2 nodes x 24 MiB read; the registry served " + egress + " bytes");
            long fromPeers = 0;
            for (int i = 1; i < 3; i++) {
                JsonNode status = daemons.get(i).status();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                while (status.path("members").size() != 2 && System.nanoTime() < deadline) { // the killed one leaves the view
                    Thread.sleep(200);
                    status = daemons.get(i).status();
                }
                assertEquals(2, status.path("members").size(), "the killed daemon is found dead: " + status.path("members"));
                fromPeers += status.path("layers").get(0).path("peerBytes").asLong();
            }
            String scraped = new String(URI.create("http://127.0.0.1:" + metricsPort + "/metrics").toURL()
                    .openStream().readAllBytes(), StandardCharsets.UTF_8);
            Matcher peerMetric = Pattern.compile(
                    "starling_fetched_bytes_total\\{source=\"peer\"} ([0-9.E]+)").matcher(scraped);
            assertTrue(peerMetric.find() && Double.parseDouble(peerMetric.group(1)) > 0, "metrics show peer bytes: " + scraped);
            assertTrue(scraped.contains("starling_members 2.0"), "and the members: " + scraped);
            Matcher reads = Pattern.compile("starling_read_seconds_count\\{source=\"(memory|disk|network)\"} ([0-9.E]+)").matcher(scraped);
            double counted = 0;
            int sources = 0;
            while (reads.find()) {
                counted += Double.parseDouble(reads.group(2));
                sources++;
            }
            assertTrue(sources == 3 && counted > 0, "and read latency by source (memory, disk, network): " + scraped);
            assertTrue(scraped.contains("starling_verification_failures_total{source=\"peer\"} 0.0"),
                    "and verification failures by source, none from honest peers: " + scraped);
            assertTrue(fromPeers >= model.length / 3, "the last two got a good part of their 48 MiB from peers (the rest they own, filled when the first read): " + fromPeers);
        } finally {
            for (DaemonProcess d : daemons) {
                d.close(); // SIGTERM: unmounts
            }
            for (Path t : targets) {
                StarlingCli.run("umount", t.toString()); // the killed daemon's dead mounts
            }
        }
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
        assertTrue(!mountinfo.contains(dir.toString()), "nothing left mounted under " + dir);
    }
}
