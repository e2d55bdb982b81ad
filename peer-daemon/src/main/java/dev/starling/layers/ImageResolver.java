package dev.starling.layers;

import dev.starling.estargz.Annotations;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
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
 * Images resolved for the runtime front ends (the layer store, the snapshotter), which ask for one
 * layer at a time: the first question about an image fetches its manifest (linux/amd64 from an
 * index) and config, and opens every eStargz layer of it ahead, in parallel, through the node's
 * {@link OpenLayers}, so the runtime's next questions find their TOCs verified. A resolved image
 * holds those layers for {@code hold} after it was last asked about, at most {@link #MAX_IMAGES}.
 */
public final class ImageResolver implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ImageResolver.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Images kept resolved at once, as stargz-store's LRU of 30. */
    public static final int MAX_IMAGES = 30;

    private final RegistryClient client;
    private final OpenLayers layers;
    private final ExecutorService executor;
    private final Consumer<ImageReference> onImage;
    private final long holdNanos;
    private final LongSupplier nanoTime;
    private final LinkedHashMap<String, Entry> images = new LinkedHashMap<>(16, 0.75f, true);

    private static final class Entry {
        final CompletableFuture<Image> resolved = new CompletableFuture<>();
        volatile long lastUsed;
    }

    /** A resolved image: its layers bottom first, their diff IDs, and the eStargz ones opened ahead. */
    public record Image(ImageReference ref, List<Descriptor> layers, List<String> diffIds,
                        List<CompletableFuture<OpenLayers.Layer>> ahead) {
        /** The index of the layer whose TOC digest or compressed digest is {@code key}, or -1. */
        public int indexOf(String key) {
            for (int i = 0; i < layers.size(); i++) {
                Descriptor d = layers.get(i);
                if (key.equals(d.annotations().get(Annotations.TOC_DIGEST)) || key.equals(d.digest().toString())) {
                    return i;
                }
            }
            return -1;
        }
    }

    /**
     * @param onImage told of every image resolved (the daemon lets peers fetch from its registry)
     * @param hold    how long an image stays resolved (its layers open) after it was last asked about
     */
    public ImageResolver(RegistryClient client, OpenLayers layers, ExecutorService executor, Consumer<ImageReference> onImage,
                         Duration hold, LongSupplier nanoTime) {
        this.client = client;
        this.layers = layers;
        this.executor = executor;
        this.onImage = onImage;
        this.holdNanos = hold.toNanos();
        this.nanoTime = nanoTime;
    }

    public RegistryClient client() {
        return client;
    }

    public OpenLayers layers() {
        return layers;
    }

    /**
     * The image {@code ref} names, resolved now or by whoever asked first.
     *
     * @throws NoSuchFileException when the registry has no such image
     */
    public Image resolve(ImageReference ref) throws IOException {
        String key = ref.toString();
        Entry entry;
        boolean resolver = false;
        synchronized (this) {
            entry = images.get(key);
            if (entry == null) {
                entry = new Entry();
                images.put(key, entry);
                resolver = true;
            }
            entry.lastUsed = nanoTime.getAsLong();
        }
        if (resolver) {
            try {
                entry.resolved.complete(fetch(ref));
            } catch (IOException | RuntimeException e) {
                synchronized (this) {
                    images.remove(key, entry);
                }
                entry.resolved.completeExceptionally(e);
            }
            sweep();
        }
        try {
            return entry.resolved.join();
        } catch (CompletionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof dev.starling.registry.NotFoundException) {
                throw new NoSuchFileException(ref + ": " + cause.getMessage());
            }
            throw cause instanceof IOException io ? io : new IOException(cause);
        }
    }

    /**
     * Layer {@code index} of {@code image}, acquired from the node's open layers (release it there).
     *
     * @throws NoSuchFileException when that layer is not eStargz
     */
    public OpenLayers.Layer acquire(Image image, int index) throws IOException {
        Descriptor d = image.layers().get(index);
        String toc = d.annotations().get(Annotations.TOC_DIGEST);
        if (toc == null) {
            throw new NoSuchFileException("layer " + d.digest() + " of " + image.ref() + " is not eStargz (no "
                    + Annotations.TOC_DIGEST + " annotation)");
        }
        return layers.acquire(client, new LayerRef(image.ref(), d, toc));
    }

    private Image fetch(ImageReference ref) throws IOException {
        Manifest manifest = LayerRefs.manifest(client, ref, null);
        List<Descriptor> descriptors = manifest.layers();
        onImage.accept(ref);
        // The layers open while the config is fetched: the first lookup waits for the slower, not both.
        List<CompletableFuture<OpenLayers.Layer>> ahead = new ArrayList<>();
        for (Descriptor d : descriptors) {
            String toc = d.annotations().get(Annotations.TOC_DIGEST);
            ahead.add(toc == null ? CompletableFuture.completedFuture(null) : CompletableFuture.supplyAsync(() -> {
                try {
                    return layers.acquire(client, new LayerRef(ref, d, toc));
                } catch (IOException e) {
                    LOG.warning("opening layer " + d.digest() + " of " + ref + " ahead: " + e.getMessage());
                    return null; // its own request tries again and reports
                }
            }, executor));
        }
        Image image = new Image(ref, descriptors, List.of(), ahead);
        try {
            Descriptor config = manifest.config();
            JsonNode configJson = JSON.readTree(client.readBlob(ref, config.digest().toString(), 0, Math.toIntExact(config.size())));
            List<String> diffIds = new ArrayList<>();
            configJson.path("rootfs").path("diff_ids").forEach(id -> diffIds.add(id.asText()));
            if (diffIds.size() != descriptors.size()) {
                throw new IOException(ref + ": its config lists " + diffIds.size() + " diff IDs for " + descriptors.size() + " layers");
            }
            return new Image(ref, descriptors, List.copyOf(diffIds), ahead);
        } catch (IOException | RuntimeException e) {
            letGo(image);
            throw e;
        }
    }

    /** Lets go of the images not asked about for the hold time, and of the least recent beyond {@link #MAX_IMAGES}. */
    public void sweep() {
        List<Entry> dropped = new ArrayList<>();
        synchronized (this) {
            long now = nanoTime.getAsLong();
            int keep = images.size();
            for (Iterator<Map.Entry<String, Entry>> it = images.entrySet().iterator(); it.hasNext(); ) {
                Entry e = it.next().getValue();
                if (e.resolved.isDone() && (keep > MAX_IMAGES || now - e.lastUsed >= holdNanos)) {
                    it.remove();
                    dropped.add(e);
                    keep--;
                }
            }
        }
        dropped.forEach(this::letGo);
    }

    private void letGo(Entry entry) {
        Image image = entry.resolved.getNow(null);
        if (image != null) {
            letGo(image);
        }
    }

    private void letGo(Image image) {
        image.ahead().forEach(f -> f.thenAccept(layer -> {
            if (layer != null) {
                release(layer);
            }
        }));
    }

    /** Releases {@code layer} to the node's open layers, logging a failure to close it. */
    public void release(OpenLayers.Layer layer) {
        try {
            layers.release(layer);
        } catch (IOException e) {
            LOG.warning("closing layer " + layer.digest() + ": " + e.getMessage());
        }
    }

    /** Images resolved now. */
    public synchronized int size() {
        return images.size();
    }

    /** Lets go of every image (the daemon is stopping). */
    @Override
    public void close() {
        List<Entry> all;
        synchronized (this) {
            all = new ArrayList<>(images.values());
            images.clear();
        }
        all.forEach(this::letGo);
    }
}
