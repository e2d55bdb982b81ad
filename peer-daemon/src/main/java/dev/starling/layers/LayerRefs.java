package dev.starling.layers;

import dev.starling.estargz.Annotations;
import dev.starling.convert.ImageConverter;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Resolves an image reference to its eStargz layers, bottom first: what every front end mounts. */
public final class LayerRefs {
    /** What is picked from a multi-platform image when no platform is asked for: this build's only one. */
    public static final Descriptor.Platform DEFAULT_PLATFORM = Descriptor.Platform.parse("linux/amd64");

    private LayerRefs() {
    }

    /**
     * The layers of {@code ref} for {@code platform} (null: {@link #DEFAULT_PLATFORM} from an index,
     * a single-platform image as it is; named, it is checked against a single-platform image).
     *
     * @throws IOException naming the layer, when one is not eStargz (no TOC digest annotation)
     */
    public static List<LayerRef> resolve(RegistryClient client, ImageReference ref, Descriptor.Platform platform)
            throws IOException {
        Manifest manifest = manifest(client, ref, platform);
        List<LayerRef> layers = new ArrayList<>();
        List<Descriptor> descriptors = manifest.layers();
        for (int i = 0; i < descriptors.size(); i++) {
            Descriptor d = descriptors.get(i);
            String toc = d.annotations().get(Annotations.TOC_DIGEST);
            if (toc == null) {
                throw new IOException("layer " + (i + 1) + " of " + ref + " (" + d.digest() + ") has no "
                        + Annotations.TOC_DIGEST + " annotation: it is not eStargz, or its TOC cannot be "
                        + "trusted. Convert the image with `starling convert`.");
            }
            layers.add(new LayerRef(ref, d, toc));
        }
        return layers;
    }

    /** The image manifest of {@code ref} for {@code platform}, picked from an index as {@link #resolve} does. */
    public static Manifest manifest(RegistryClient client, ImageReference ref, Descriptor.Platform platform)
            throws IOException {
        Manifest manifest = client.manifest(ref);
        if (manifest.isIndex()) {
            Descriptor.Platform wanted = platform == null ? DEFAULT_PLATFORM : platform;
            return client.manifest(ref.withDigest(manifest.select(wanted).digest().toString()));
        }
        if (platform != null) {
            ImageConverter.requirePlatform(client, ref, manifest, platform);
        }
        return manifest;
    }
}
