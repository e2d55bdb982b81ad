package dev.starling.store;

import dev.starling.estargz.Annotations;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.estargz.Footer;
import dev.starling.fuse.ServedLayer;
import dev.starling.fuse.LayerSource;
import dev.starling.fuse.StateFile;
import dev.starling.layers.ImageResolver;
import dev.starling.layers.OpenLayers;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;

/**
 * The daemon's side of the Additional Layer Store: an image reference and a layer key resolved to
 * one of the node's open layers, as stargz-store does it (compat doc section 2.3). The key is a
 * TOC digest (containers/image 5.31 and later) or a compressed layer digest (before); the
 * {@code info} file takes the form the key implies. Images are resolved, and all their layers
 * opened ahead, by the node's {@link ImageResolver}.
 */
public final class StoreLayerSource implements LayerSource {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** containers/storage's compression constants (pkg/archive): what {@code info} says the blob is. */
    private static final int GZIP = 2, ZSTD = 4;

    private final ImageResolver images;

    public StoreLayerSource(ImageResolver images) {
        this.images = images;
    }

    @Override
    public void checkReference(String imageRef) {
        ImageReference.parse(imageRef);
    }

    @Override
    public ServedLayer open(String imageRef, String key) throws IOException {
        ImageResolver.Image image = images.resolve(ImageReference.parse(imageRef));
        int index = image.indexOf(key);
        if (index < 0) {
            throw new NoSuchFileException(imageRef + " has no layer " + key);
        }
        Descriptor d = image.layers().get(index);
        boolean byToc = key.equals(d.annotations().get(Annotations.TOC_DIGEST));
        String uncompressed = d.annotations().get(Annotations.UNCOMPRESSED_SIZE);
        if (!byToc && d.annotations().containsKey(Annotations.TOC_DIGEST)
                && (uncompressed == null || !uncompressed.matches("[0-9]{1,18}"))) {
            // containers/storage before 5.31 records the diff size from `info`, and an image whose
            // layer size it does not know cannot run: better it pulls this layer the ordinary way
            throw new NoSuchFileException("layer " + key + " of " + imageRef + " has no " + Annotations.UNCOMPRESSED_SIZE
                    + " annotation, which this runtime's lookup by layer digest needs: it pulls the layer itself");
        }
        OpenLayers.Layer layer;
        try {
            layer = images.acquire(image, index);
        } catch (NoSuchFileException notEStargz) {
            throw new NoSuchFileException(notEStargz.getMessage() + ": the runtime pulls it itself");
        }
        try {
            byte[] info = info(layer, d, image.diffIds().get(index), byToc);
            return new ServedLayer(layer.blob().index(), layer.reader(), info, layer.remote(), d.size(),
                    new StateFile(d.digest() + ".json", layer.reader()::stateJson), () -> images.release(layer));
        } catch (RuntimeException e) {
            images.release(layer);
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
                    .put("toc-digest", d.annotations().get(Annotations.TOC_DIGEST));
            info.putObject("flags").put("expected-layer-diffid", diffId);
        } else {
            info.put("compressed-diff-digest", d.digest().toString()).put("compressed-size", d.size())
                    .put("diff-digest", diffId).put("diff-size", Long.parseLong(d.annotations().get(Annotations.UNCOMPRESSED_SIZE)))
                    .put("compression", compression);
        }
        return (info.toString() + "\n").getBytes(StandardCharsets.UTF_8);
    }
}
