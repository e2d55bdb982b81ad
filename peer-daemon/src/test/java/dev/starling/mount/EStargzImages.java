package dev.starling.mount;

import dev.starling.estargz.Annotations;
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

    /**
     * A converted layer: the blob, and what its descriptor is annotated with, as converters do: the
     * TOC digest (null for a plain layer) and the uncompressed size (-1: not annotated).
     */
    public record Layer(Path blob, String tocDigest, String diffId, long uncompressedSize) {
        public Layer(Path blob, String tocDigest, String diffId) {
            this(blob, tocDigest, diffId, -1);
        }
    }

    /** {@code tree} as a tar (GNU tar, numeric owners, names in order), converted with {@code options} into {@code out}. */
    public static Layer convert(Path tree, Path out, ConvertOptions options) throws Exception {
        Path tar = out.resolveSibling(out.getFileName() + ".tar");
        Processes.run(tree, "tar", "--format=posix", "--numeric-owner", "--sort=name", "-cf", tar.toString(), ".");
        ConvertResult r = Converter.convert(tar, out, options);
        Files.delete(tar);
        return new Layer(out, r.tocDigest(), r.diffId(), r.uncompressedSize());
    }

    /**
     * A tree a container can run: the static {@code /bin/busybox} (Debian's busybox-static) with
     * {@code applets} linked to it under {@code bin/}; the caller adds its files.
     */
    public static Path busyboxTree(Path tree, String... applets) throws IOException {
        Files.createDirectories(tree.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), tree.resolve("bin/busybox"));
        for (String applet : applets) {
            Files.createSymbolicLink(tree.resolve("bin").resolve(applet), Path.of("busybox"));
        }
        return tree;
    }

    /** {@code tree} as a plain tar.gz layer (gzip -n), not eStargz: what an ordinary build pushes. Its TOC digest is null. */
    public static Layer plain(Path tree, Path out) throws Exception {
        Path tar = out.resolveSibling(out.getFileName() + ".tar");
        Processes.run(tree, "tar", "--format=posix", "--numeric-owner", "--sort=name", "-cf", tar.toString(), ".");
        String diffId = Manifest.sha256(Files.readAllBytes(tar));
        Processes.run(tar.getParent(), "gzip", "-n", "-f", tar.getFileName().toString());
        Files.move(tar.resolveSibling(tar.getFileName() + ".gz"), out, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        return new Layer(out, null, diffId);
    }

    /** Pushes an image of {@code layers} (bottom first), each eStargz one annotated with its TOC digest, as the converter does. */
    public static void push(RegistryClient client, ImageReference ref, List<Layer> layers) throws IOException {
        push(client, ref, layers, List.of());
    }

    /** {@link #push(RegistryClient, ImageReference, List)} with a command the image runs by default (its config's Cmd). */
    public static void push(RegistryClient client, ImageReference ref, List<Layer> layers, List<String> cmd) throws IOException {
        StringBuilder descriptors = new StringBuilder();
        StringBuilder diffIds = new StringBuilder();
        for (Layer layer : layers) {
            byte[] bytes = Files.readAllBytes(layer.blob());
            String digest = Manifest.sha256(bytes);
            client.pushBlob(ref, digest, layer.blob(), null);
            diffIds.append(diffIds.isEmpty() ? "" : ",").append('"').append(layer.diffId()).append('"');
            descriptors.append(descriptors.isEmpty() ? "" : ",").append("{\"mediaType\":\"")
                    .append(MediaTypes.OCI_LAYER_GZIP).append("\",\"digest\":\"").append(digest)
                    .append("\",\"size\":").append(bytes.length);
            if (layer.tocDigest() != null) {
                descriptors.append(",\"annotations\":{\"").append(Annotations.TOC_DIGEST).append("\":\"")
                        .append(layer.tocDigest()).append('"');
                if (layer.uncompressedSize() >= 0) {
                    descriptors.append(",\"").append(Annotations.UNCOMPRESSED_SIZE).append("\":\"")
                            .append(layer.uncompressedSize()).append('"');
                }
                descriptors.append('}');
            }
            descriptors.append('}');
        }
        String command = cmd.isEmpty() ? "" : ",\"config\":{\"Cmd\":[" + String.join(",", cmd.stream()
                .map(c -> "\"" + c + "\"").toList()) + "]}";
        byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\"" + command
                + ",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" + diffIds + "]}}").getBytes(StandardCharsets.UTF_8);
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
