package dev.starling.snapshot;

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
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Debian's containerd with the daemon as its proxy snapshotter "starling", against a real registry:
 * `ctr-remote images rpull` of an eStargz image downloads no layer, `ctr run` reads the image's
 * files through the lazy layer, a plain image still pulls and runs through the ordinary snapshots,
 * and after the daemon restarts, with the registry down, the committed snapshots are there and new
 * containers of both run.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class ContainerdSnapshotterTest {
    private static final String SCRIPT = "cat /data/hello.txt; md5sum /data/model.bin";

    @TempDir
    Path dir;

    @Test
    void containerdRunsAnEStargzImageLazilyAPlainOneAsUsualAndBothSurviveARestart() throws Exception {
        Path tree = EStargzImages.busyboxTree(dir.resolve("tree"), "sh", "cat", "md5sum");
        Files.createDirectories(tree.resolve("data"));
        Files.writeString(tree.resolve("data/hello.txt"), "hello from the snapshotter\n");
        byte[] model = new byte[6 << 20];
        new Random(12).nextBytes(model);
        Files.write(tree.resolve("data/model.bin"), model);
        String expected = "hello from the snapshotter\n"
                + HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(model)) + "  /data/model.bin\n";
        EStargzImages.Layer esgz = EStargzImages.convert(tree, dir.resolve("layer.esgz"), ConvertOptions.defaults());
        EStargzImages.Layer gzip = EStargzImages.plain(tree, dir.resolve("layer.tar.gz"));
        String lazyLayer = Manifest.sha256(Files.readAllBytes(esgz.blob()));
        String plainLayer = Manifest.sha256(Files.readAllBytes(gzip.blob()));
        Path socket = dir.resolve("sn.sock");
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE)) {
            ImageReference lazy = registry.ref("snap/app:esgz");
            ImageReference plain = registry.ref("snap/app:plain");
            try (RegistryClient client = RegistryClient.anonymous()) {
                EStargzImages.push(client, lazy, List.of(esgz));
                EStargzImages.push(client, plain, List.of(gzip));
            }
            List<String> options = new ArrayList<>(List.of("--peer-listen", "127.0.0.1:" + DaemonConfig.freePortPair(),
                    "--no-store", "--containerd-socket", socket.toString(), "--insecure-registry", registry.host(),
                    "--cache-size", "1G"));
            DaemonProcess daemon = DaemonProcess.start(dir, "node", options).awaitReady();
            try (Containerd containerd = Containerd.start(dir.resolve("ctd"), socket)) {
                containerd.ok("ctr-remote", "images", "rpull", "--plain-http", "--snapshotter", "starling", lazy.toString());
                List<LocalRegistryServer.Request> byContainerd = registry.requests().stream()
                        .filter(r -> r.isBlobGet(lazyLayer) && !r.userAgent().startsWith("starling/")).toList();
                assertEquals(List.of(), byContainerd, "containerd downloaded none of the eStargz layer");
                JsonNode snapshot = daemon.status().path("snapshotter").path("snapshots").get(0);
                assertTrue(snapshot.path("remote").asBoolean() && snapshot.path("kind").asText().equals("committed"),
                        "the layer is a committed remote snapshot: " + daemon.status().path("snapshotter"));
                assertTrue(containerd.ok("ctr", "snapshots", "--snapshotter", "starling", "info", snapshot.path("key").asText())
                        .contains("\"containerd.io/snapshot/remote\": \"remote snapshot\""), "containerd sees the label");

                assertEquals(expected, containerd.ok("ctr", "run", "--rm", "--snapshotter", "starling", lazy.toString(), "lazy-1",
                        "sh", "-c", SCRIPT), "the container reads the image's files through the lazy layer: " + daemon.log());

                containerd.ok("ctr-remote", "images", "rpull", "--plain-http", "--snapshotter", "starling", plain.toString());
                assertTrue(registry.requests().stream().anyMatch(r -> r.isBlobGet(plainLayer) && r.userAgent().startsWith("containerd/")),
                        "not eStargz: containerd downloads the plain layer itself");
                assertEquals(expected, containerd.ok("ctr", "run", "--rm", "--snapshotter", "starling", plain.toString(),
                        "plain-1", "sh", "-c", SCRIPT), "and runs it from an ordinary snapshot");

                long fetched = System.nanoTime() + TimeUnit.SECONDS.toNanos(60); // background fetch makes the layer local
                while (daemon.status().path("layers").get(0).path("fetchedPercent").asDouble() < 100 && System.nanoTime() < fetched) {
                    Thread.sleep(200);
                }
                daemon.close(); // SIGTERM: the daemon unmounts its layers and stops
                registry.stop(); // and the registry is gone when it comes back
                daemon = DaemonProcess.start(dir, "node", options).awaitReady();
                dev.starling.estargz.Processes.Result again = null;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                for (int attempt = 0; System.nanoTime() < deadline; attempt++) { // containerd backs off before it redials
                    again = containerd.run("ctr", "run", "--rm", "--snapshotter", "starling", lazy.toString(), "lazy-" + (attempt + 2),
                            "sh", "-c", SCRIPT);
                    if (again.exitCode() == 0) {
                        break;
                    }
                    Thread.sleep(1000);
                }
                assertEquals(expected, again.stdout(), "with the registry down, a new container of the lazy image runs after "
                        + "the restart, its layer opened from the kept TOC and read from the disk tier: " + daemon.log());
                String listed = containerd.ok("ctr", "snapshots", "--snapshotter", "starling", "ls");
                assertTrue(listed.contains(snapshot.path("key").asText()), "the committed snapshots are still there: " + listed);
                assertEquals(expected, containerd.ok("ctr", "run", "--rm", "--snapshotter", "starling", plain.toString(),
                        "plain-2", "sh", "-c", SCRIPT), "and of the plain one");
            } finally {
                daemon.close();
            }
        }
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
        assertTrue(!mountinfo.contains(dir.toString()), "nothing left mounted under " + dir);
    }
}
