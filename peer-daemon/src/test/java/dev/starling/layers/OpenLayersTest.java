package dev.starling.layers;

import dev.starling.mount.ImageMount;
import dev.starling.mount.EStargzImages;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.starling.estargz.write.ConvertOptions;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fuse.MountOptions;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** One node, one chunk store: two images sharing a layer open it once and fetch its chunks once. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OpenLayersTest {
    @TempDir
    Path dir;

    @Test
    void twoImagesSharingALayerShareItsReadPathAndFetchEachChunkOnce() throws Exception {
        Path base = Files.createDirectories(dir.resolve("base/etc"));
        Files.writeString(base.resolve("os-release"), "shared\n");
        Path app = Files.createDirectories(dir.resolve("app/srv"));
        Files.writeString(app.resolve("main"), "app\n");
        EStargzImages.Layer shared = EStargzImages.convert(dir.resolve("base"), dir.resolve("base.esgz"), ConvertOptions.defaults());
        EStargzImages.Layer top = EStargzImages.convert(dir.resolve("app"), dir.resolve("app.esgz"), ConvertOptions.defaults());
        FetchOptions onDemand = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false);
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous();
             ChunkStore store = new ChunkStore(new DiskChunkCache(dir.resolve("chunks"), 1L << 30), 64 << 20, onDemand);
             OpenLayers layers = new OpenLayers(store)) {
            ImageReference small = registry.ref("shared/base:v1");
            ImageReference big = registry.ref("shared/app:v1");
            EStargzImages.push(client, small, List.of(shared));
            EStargzImages.push(client, big, List.of(shared, top));
            try (ImageMount a = ImageMount.mount(client, small, null, dir.resolve("a"), Files.createDirectories(dir.resolve("wa")),
                    layers, MountOptions.DEFAULTS);
                 ImageMount b = ImageMount.mount(client, big, null, dir.resolve("b"), Files.createDirectories(dir.resolve("wb")),
                         layers, MountOptions.DEFAULTS)) {
                assertSame(a.layerReaders().getFirst(), b.layerReaders().getFirst(), "the shared layer is opened once");
                assertEquals(2, layers.layers().size(), "two blobs open, not three layers");
                assertEquals("shared\n", Files.readString(dir.resolve("a/etc/os-release")));
                assertEquals("shared\n", Files.readString(dir.resolve("b/etc/os-release")));
                assertEquals("app\n", Files.readString(dir.resolve("b/srv/main")));
                assertEquals(1, a.layerReaders().getFirst().counters().fetchRequests(), "read through two images, fetched once");
            }
            assertEquals(0, layers.layers().size(), "the last user's release closes a layer");
        }
    }
    @Test
    void aKeptTocOpensTheLayerWithoutTheRegistryAndATamperedOneIsFetchedAgain() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree/etc"));
        Files.writeString(tree.resolve("motd"), "kept\n");
        EStargzImages.Layer layer = EStargzImages.convert(dir.resolve("tree"), dir.resolve("l.esgz"), ConvertOptions.defaults());
        FetchOptions onDemand = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false);
        TocCache tocs = new TocCache(dir.resolve("tocs"));
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
             RegistryClient client = RegistryClient.anonymous();
             ChunkStore store = new ChunkStore(new DiskChunkCache(dir.resolve("chunks"), 1L << 30), 64 << 20, onDemand)) {
            ImageReference ref = registry.ref("kept/app:v1");
            EStargzImages.push(client, ref, List.of(layer));
            LayerRef layerRef = LayerRefs.resolve(client, ref, null).getFirst();
            Path kept = dir.resolve("tocs").resolve(layerRef.digest().hex());
            try (OpenLayers layers = new OpenLayers(store, OpenLayers.OriginFactory.REGISTRY_ONLY, tocs)) {
                OpenLayers.Layer open = layers.acquire(client, layerRef);
                assertTrue(Files.exists(kept), "the footer and TOC were kept");
                layers.release(open);
            }
            byte[] good = Files.readAllBytes(kept);
            byte[] bad = good.clone();
            bad[bad.length / 2] ^= 0x55; // a flipped bit inside the kept TOC
            Files.write(kept, bad);
            long before = registry.blobBytesServed();
            try (OpenLayers layers = new OpenLayers(store, OpenLayers.OriginFactory.REGISTRY_ONLY, tocs)) {
                OpenLayers.Layer open = layers.acquire(client, layerRef);
                assertTrue(registry.blobBytesServed() > before, "a kept TOC that does not verify is fetched again");
                assertArrayEquals(good, Files.readAllBytes(kept), "and kept again, right");
                layers.release(open);
            }
            registry.stop();
            try (OpenLayers layers = new OpenLayers(store, OpenLayers.OriginFactory.REGISTRY_ONLY, tocs)) {
                OpenLayers.Layer open = layers.acquire(client, layerRef);
                assertEquals(1, open.blob().index().root().child("etc").childCount(), "opened with the registry down");
                layers.release(open);
            }
        }
    }
}
