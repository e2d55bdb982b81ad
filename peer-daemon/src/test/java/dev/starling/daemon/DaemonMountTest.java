package dev.starling.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.mount.StallingProxy;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A mount waiting on a wedged registry holds up nothing else the daemon does. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DaemonMountTest {
    @TempDir
    Path dir;

    @Test
    void aMountWaitingOnAWedgedRegistryDelaysNeitherStatusNorOtherMounts() throws Exception {
        Files.createDirectories(dir.resolve("tree"));
        Files.writeString(dir.resolve("tree/hello.txt"), "hello\n");
        EStargzImages.Layer layer = EStargzImages.convert(dir.resolve("tree"), dir.resolve("l.esgz"), ConvertOptions.defaults());
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = new RegistryClient(RegistryClient.Settings.defaults()
                     .withTimeouts(Duration.ofSeconds(60), Duration.ofSeconds(60)));
             StallingProxy proxy = new StallingProxy(Integer.parseInt(registry.host().substring(registry.host().indexOf(':') + 1)))) {
            ImageReference direct = registry.ref("wedge/app:v1");
            EStargzImages.push(client, direct, List.of(layer));
            String wedged = "127.0.0.1:" + proxy.port() + "/wedge/app:v1";
            DaemonConfig config = new DaemonConfig(dir.resolve("root"), dir.resolve("d.sock"),
                    new InetSocketAddress("127.0.0.1", DaemonConfig.freePortPair()), List.of(), "", "t", Set.of(), 64L << 20);
            java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newCachedThreadPool();
            try (Daemon daemon = Daemon.start(config, client)) {
                proxy.stall(true);
                CompletableFuture<Void> slow = CompletableFuture.runAsync(() -> {
                    try {
                        daemon.mountImage(wedged, dir.resolve("slow"));
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }, threads);
                Thread.sleep(500); // the mount now waits for the manifest the proxy holds back
                assertTrue(!slow.isDone(), "the mount waits on the wedged registry");
                long t0 = System.nanoTime();
                daemon.status();
                daemon.mountImage(direct.toString(), dir.resolve("fast"));
                double seconds = (System.nanoTime() - t0) / 1e9;
                assertTrue(seconds < 10, "status and another mount answered while it waited (" + seconds + " s)");
                assertEquals("hello\n", Files.readString(dir.resolve("fast/hello.txt")));
                ExecutionException twice = assertThrows(ExecutionException.class, () -> CompletableFuture.runAsync(() -> {
                    try {
                        daemon.mountImage(wedged, dir.resolve("slow"));
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }, threads).get(10, TimeUnit.SECONDS));
                assertTrue(twice.getCause().getMessage().contains("already mounted"), "its target is reserved: " + twice.getCause());
                proxy.stall(false);
                slow.get(60, TimeUnit.SECONDS);
                assertEquals("hello\n", Files.readString(dir.resolve("slow/hello.txt")), "and the wedged one finishes when it can");
            } finally {
                threads.shutdownNow();
            }
        }
        assertTrue(!Files.readString(Path.of("/proc/self/mountinfo")).contains(dir.toString()), "nothing left mounted");
    }
}
