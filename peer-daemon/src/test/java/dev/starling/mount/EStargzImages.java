package dev.starling.mount;

import dev.starling.convert.ImageConverter;
import dev.starling.estargz.Processes;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import dev.starling.registry.ImageReference;
import dev.starling.registry.Manifest;
import dev.starling.registry.MediaTypes;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Test images: directory trees converted to eStargz layers and pushed to a real registry. */
public final class EStargzImages {
    private EStargzImages() {
    }

    /** A converted layer: the blob and the TOC digest its descriptor is annotated with. */
    public record Layer(Path blob, String tocDigest, String diffId) {
    }

    /** {@code tree} as a tar (GNU tar, numeric owners, names in order), converted with {@code options} into {@code out}. */
    public static Layer convert(Path tree, Path out, ConvertOptions options) throws Exception {
        Path tar = out.resolveSibling(out.getFileName() + ".tar");
        Processes.run(tree, "tar", "--format=posix", "--numeric-owner", "--sort=name", "-cf", tar.toString(), ".");
        ConvertResult r = Converter.convert(tar, out, options);
        Files.delete(tar);
        return new Layer(out, r.tocDigest(), r.diffId());
    }

    /** Pushes an image of {@code layers} (bottom first), each annotated with its TOC digest, as the converter does. */
    public static void push(RegistryClient client, ImageReference ref, List<Layer> layers) throws IOException {
        StringBuilder descriptors = new StringBuilder();
        StringBuilder diffIds = new StringBuilder();
        for (Layer layer : layers) {
            byte[] bytes = Files.readAllBytes(layer.blob());
            String digest = Manifest.sha256(bytes);
            client.pushBlob(ref, digest, layer.blob(), null);
            diffIds.append(diffIds.isEmpty() ? "" : ",").append('"').append(layer.diffId()).append('"');
            descriptors.append(descriptors.isEmpty() ? "" : ",").append("{\"mediaType\":\"")
                    .append(MediaTypes.OCI_LAYER_GZIP).append("\",\"digest\":\"").append(digest)
                    .append("\",\"size\":").append(bytes.length).append(",\"annotations\":{\"")
                    .append(ImageConverter.TOC_DIGEST).append("\":\"").append(layer.tocDigest()).append("\"}}");
        }
        byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                + diffIds + "]}}").getBytes(StandardCharsets.UTF_8);
        Path configFile = Files.createTempFile("config", ".json");
        try {
            Files.write(configFile, config);
            client.pushBlob(ref, Manifest.sha256(config), configFile, null);
        } finally {
            Files.delete(configFile);
        }
        client.pushManifest(ref, ("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_MANIFEST
                + "\",\"config\":{\"mediaType\":\"" + MediaTypes.OCI_CONFIG + "\",\"digest\":\"" + Manifest.sha256(config)
                + "\",\"size\":" + config.length + "},\"layers\":[" + descriptors + "]}").getBytes(StandardCharsets.UTF_8),
                MediaTypes.OCI_MANIFEST);
    }
}
