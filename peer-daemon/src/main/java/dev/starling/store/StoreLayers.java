package dev.starling.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.convert.ImageConverter;
import dev.starling.estargz.Footer;
import dev.starling.fuse.StateFile;
import dev.starling.fuse.StoreFileSystem;
import dev.starling.mount.ImageLayers;
import dev.starling.mount.LayerRef;
import dev.starling.mount.OpenLayers;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import dev.starling.registry.RegistryException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * The daemon's side of the Additional Layer Store: an image reference and a layer key resolved to
 * one of the node's {@link OpenLayers}, as stargz-store does it (compat doc section 2.3). The first
 * lookup of an image fetches its manifest and config and opens every eStargz layer of it in
 * parallel (containers/storage looks up the layers one after another, and each then finds its TOC
 * already verified); the image stays resolved, holding those layers, for {@code hold} after it was
 * last used, at most {@link #MAX_IMAGES} images.
 */
public final class StoreLayers implements StoreFileSystem.Layers {
    private static final Logger LOG = Logger.getLogger(StoreLayers.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    /** containers/storage's compression constants (pkg/archive): what {@code info} says the blob is. */
    private static final int GZIP = 2, ZSTD = 4;
    /** Images kept resolved at once, as stargz-store's LRU of 30. */
    static final int MAX_IMAGES = 30;

    private final RegistryClient client;
    private final OpenLayers layers;
    private final ExecutorService executor;
    private final Consumer<ImageReference> onImage;
    private final long holdNanos;
    private final LongSupplier nanoTime;
    private final LinkedHashMap<String, Image> images = new LinkedHashMap<>(16, 0.75f, true);

    /** A resolved image: its layers, their diff IDs, and the layers opened ahead, by index. */
    private static final class Image {
        final CompletableFuture<Resolved> resolved = new CompletableFuture<>();
        volatile long lastUsed;
    }

    private record Resolved(List<Descriptor> descriptors, List<String> diffIds, List<CompletableFuture<OpenLayers.Layer>> ahead,
                            ImageReference ref) {
    }

    /**
     * @param onImage  told of every image the store resolves (the daemon lets peers fetch from its registry)
     * @param hold     how long an image stays resolved (its layers open) after its last lookup
     */
    public StoreLayers(RegistryClient client, OpenLayers layers, ExecutorService executor, Consumer<ImageReference> onImage,
                       Duration hold, LongSupplier nanoTime) {
        this.client = client;
        this.layers = layers;
        this.executor = executor;
        this.onImage = onImage;
        this.holdNanos = hold.toNanos();
        this.nanoTime = nanoTime;
    }

    @Override
    public void checkReference(String imageRef) {
        ImageReference.parse(imageRef);
    }

    @Override
    public StoreFileSystem.Layer open(String imageRef, String key) throws IOException {
        ImageReference ref = ImageReference.parse(imageRef);
        Resolved image = image(imageRef, ref);
        int index = -1;
        boolean byToc = false;
        for (int i = 0; i < image.descriptors().size(); i++) {
            Descriptor d = image.descriptors().get(i);
            String toc = d.annotations().get(ImageConverter.TOC_DIGEST);
            if (key.equals(toc) || key.equals(d.digest().toString())) {
                index = i;
                byToc = key.equals(toc);
                break;
            }
        }
        if (index < 0) {
            throw new NoSuchFileException(imageRef + " has no layer " + key);
        }
        Descriptor d = image.descriptors().get(index);
        String toc = d.annotations().get(ImageConverter.TOC_DIGEST);
        if (toc == null) {
            throw new NoSuchFileException("layer " + key + " of " + imageRef + " is not eStargz (no " + ImageConverter.TOC_DIGEST
                    + " annotation): the runtime pulls it itself");
        }
        String uncompressed = d.annotations().get(ImageConverter.UNCOMPRESSED_SIZE);
        if (!byToc && (uncompressed == null || !uncompressed.matches("[0-9]{1,18}"))) {
            // containers/storage before 5.31 records the diff size from `info`, and an image whose
            // layer size it does not know cannot run: better it pulls this layer the ordinary way
            throw new NoSuchFileException("layer " + key + " of " + imageRef + " has no " + ImageConverter.UNCOMPRESSED_SIZE
                    + " annotation, which this runtime's lookup by layer digest needs: it pulls the layer itself");
        }
        OpenLayers.Layer layer = layers.acquire(client, new LayerRef(ref, d, toc));
        try {
            byte[] info = info(layer, d, image.diffIds().get(index), byToc);
            return new StoreFileSystem.Layer(layer.blob().index(), layer.reader(), info, layer.remote(), d.size(),
                    new StateFile(d.digest() + ".json", layer.reader()::stateJson), () -> release(layer));
        } catch (RuntimeException e) {
            release(layer);
            throw e;
        }
    }

    /**
     * containers/storage's layer JSON: for a TOC-digest key, {@code toc-digest} and the expected
     * diff ID; for a layer-digest key (containers/image before 5.31), the legacy form with sizes.
     */
    private static byte[] info(OpenLayers.Layer layer, Descriptor d, String diffId, boolean byToc) {
        int compression = layer.blob().footer().format() == Footer.Format.ZSTD_CHUNKED ? ZSTD : GZIP;
        ObjectNode info = JSON.createObjectNode();
        if (byToc) {
            info.put("diff-size", -1).put("compression", compression)
                    .put("toc-digest", d.annotations().get(ImageConverter.TOC_DIGEST));
            info.putObject("flags").put("expected-layer-diffid", diffId);
        } else {
            info.put("compressed-diff-digest", d.digest().toString()).put("compressed-size", d.size())
                    .put("diff-digest", diffId).put("diff-size", Long.parseLong(d.annotations().get(ImageConverter.UNCOMPRESSED_SIZE)))
                    .put("compression", compression);
        }
        return (info.toString() + "\n").getBytes(StandardCharsets.UTF_8);
    }

    private void release(OpenLayers.Layer layer) {
        try {
            layers.release(layer);
        } catch (IOException e) {
            LOG.warning("closing layer " + layer.digest() + ": " + e.getMessage());
        }
    }

    /** The image resolved now, or by whoever asked first; resolving opens all its eStargz layers ahead. */
    private Resolved image(String key, ImageReference ref) throws IOException {
        Image image;
        boolean resolver = false;
        synchronized (this) {
            image = images.get(key);
            if (image == null) {
                image = new Image();
                images.put(key, image);
                resolver = true;
            }
            image.lastUsed = nanoTime.getAsLong();
        }
        if (resolver) {
            try {
                image.resolved.complete(resolve(ref));
            } catch (IOException | RuntimeException e) {
                synchronized (this) {
                    images.remove(key, image);
                }
                image.resolved.completeExceptionally(e);
            }
            sweep();
        }
        try {
            return image.resolved.join();
        } catch (CompletionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RegistryException r && r.status() == 404) {
                throw new NoSuchFileException(ref + ": " + cause.getMessage());
            }
            throw cause instanceof IOException io ? io : new IOException(cause);
        }
    }

    private Resolved resolve(ImageReference ref) throws IOException {
        Manifest manifest = ImageLayers.manifest(client, ref, null);
        Descriptor config = manifest.config();
        JsonNode configJson = JSON.readTree(client.readBlob(ref, config.digest().toString(), 0, Math.toIntExact(config.size())));
        List<String> diffIds = new ArrayList<>();
        configJson.path("rootfs").path("diff_ids").forEach(id -> diffIds.add(id.asText()));
        List<Descriptor> descriptors = manifest.layers();
        if (diffIds.size() != descriptors.size()) {
            throw new IOException(ref + ": its config lists " + diffIds.size() + " diff IDs for " + descriptors.size() + " layers");
        }
        onImage.accept(ref);
        List<CompletableFuture<OpenLayers.Layer>> ahead = new ArrayList<>();
        for (Descriptor d : descriptors) {
            String toc = d.annotations().get(ImageConverter.TOC_DIGEST);
            ahead.add(toc == null ? CompletableFuture.completedFuture(null) : CompletableFuture.supplyAsync(() -> {
                try {
                    return layers.acquire(client, new LayerRef(ref, d, toc));
                } catch (IOException e) {
                    LOG.warning("opening layer " + d.digest() + " of " + ref + " ahead: " + e.getMessage());
                    return null; // its own lookup tries again and reports
                }
            }, executor));
        }
        return new Resolved(descriptors, List.copyOf(diffIds), ahead, ref);
    }

    /** Lets go of the images not looked up for the hold time, and of the least recent beyond {@link #MAX_IMAGES}. */
    public void sweep() {
        List<Image> dropped = new ArrayList<>();
        synchronized (this) {
            long now = nanoTime.getAsLong();
            int keep = images.size();
            for (Iterator<Map.Entry<String, Image>> it = images.entrySet().iterator(); it.hasNext(); ) {
                Image image = it.next().getValue();
                if (image.resolved.isDone() && (keep > MAX_IMAGES || now - image.lastUsed >= holdNanos)) {
                    it.remove();
                    dropped.add(image);
                    keep--;
                }
            }
        }
        dropped.forEach(this::letGo);
    }

    private void letGo(Image image) {
        Resolved r = image.resolved.getNow(null);
        if (r != null) {
            r.ahead().forEach(f -> f.thenAccept(layer -> {
                if (layer != null) {
                    release(layer);
                }
            }));
        }
    }

    /** Images resolved now. */
    public synchronized int images() {
        return images.size();
    }

    /** Lets go of every image (the daemon is stopping). */
    public void close() {
        List<Image> all;
        synchronized (this) {
            all = new ArrayList<>(images.values());
            images.clear();
        }
        all.forEach(this::letGo);
    }
}
