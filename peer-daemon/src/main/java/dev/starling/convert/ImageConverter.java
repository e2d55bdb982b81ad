package dev.starling.convert;

import dev.starling.estargz.Annotations;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import dev.starling.registry.Descriptor;
import dev.starling.registry.Digest;
import dev.starling.registry.ImageReference;
import dev.starling.registry.Manifest;
import dev.starling.registry.MediaTypes;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Converts an image in a registry to eStargz and pushes it, like {@code nerdctl image convert
 * --estargz --oci}: every layer converted, the config's DiffIDs rewritten, OCI media types, and the
 * TOC-digest and uncompressed-size annotations on each layer. Indexes convert every platform, or
 * the one asked for.
 */
public final class ImageConverter {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Told about each layer as it converts. */
    public interface Listener {
        void layerStarted(String platform, int index, int count, Descriptor layer);

        void progress(long done, long total);

        void layerDone(String platform, int index, Descriptor converted, ConvertResult result);

        Listener NONE = new Listener() {
            @Override
            public void layerStarted(String platform, int index, int count, Descriptor layer) {
            }

            @Override
            public void progress(long done, long total) {
            }

            @Override
            public void layerDone(String platform, int index, Descriptor converted, ConvertResult result) {
            }
        };
    }

    private final RegistryClient client;
    private final ConvertOptions options;
    private final Path workDir;
    private final Listener listener;

    public ImageConverter(RegistryClient client, ConvertOptions options, Path workDir, Listener listener) {
        this.client = client;
        this.options = options;
        this.workDir = workDir;
        this.listener = listener;
    }

    /** Converts {@code src} to {@code dst}; returns the pushed manifest (or index) digest. */
    public String convert(ImageReference src, ImageReference dst, Descriptor.Platform platform) throws IOException {
        Manifest top = client.manifest(src);
        if (!top.isIndex()) {
            if (platform != null) {
                requirePlatform(src, top, platform);
            }
            Pushed pushed = convertManifest(src, top, dst, "");
            return client.pushManifest(dst, pushed.bytes, MediaTypes.OCI_MANIFEST);
        }
        List<Descriptor> all = top.manifests();
        Descriptor chosen = platform == null ? null : top.select(platform);
        ArrayNode converted = JSON.createArrayNode();
        for (int position = 0; position < all.size(); position++) {
            Descriptor entry = all.get(position);
            if (chosen != null && !entry.equals(chosen)) {
                continue;
            }
            Manifest m = client.manifest(src.withDigest(entry.digest().toString()));
            if (m.isIndex()) {
                throw new IOException("nested index " + entry.digest() + " in " + src + " is not supported");
            }
            String label = String.valueOf(entry.platform());
            Pushed pushed = convertManifest(src, m, dst, label);
            String digest = client.pushManifest(dst.withDigest(Manifest.sha256(pushed.bytes)), pushed.bytes,
                    MediaTypes.OCI_MANIFEST);
            ObjectNode d = converted.addObject();
            d.put("mediaType", MediaTypes.OCI_MANIFEST).put("digest", digest).put("size", pushed.bytes.length);
            JsonNode original = top.json().path("manifests").get(position);
            if (original.has("platform")) {
                d.set("platform", original.get("platform"));
            }
            if (original.has("annotations")) {
                d.set("annotations", original.get("annotations"));
            }
        }
        if (platform != null) {
            // One platform asked for: push its manifest itself under the tag, as nerdctl --platform does.
            Manifest only = client.manifest(dst.withDigest(converted.get(0).get("digest").asText()));
            return client.pushManifest(dst, only.raw(), MediaTypes.OCI_MANIFEST);
        }
        ObjectNode index = JSON.createObjectNode();
        index.put("schemaVersion", 2).put("mediaType", MediaTypes.OCI_INDEX);
        index.set("manifests", converted);
        if (top.json().has("annotations")) {
            index.set("annotations", top.json().get("annotations"));
        }
        return client.pushManifest(dst, JSON.writeValueAsBytes(index), MediaTypes.OCI_INDEX);
    }

    private record Pushed(byte[] bytes) {
    }

    /**
     * A single-platform image asked for as another platform: converting (or mounting) it anyway would
     * run the wrong binaries, so it is refused, naming the platform it has.
     */
    public static void requirePlatform(RegistryClient client, ImageReference ref, Manifest manifest,
                                       Descriptor.Platform wanted) throws IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        client.fetchBlob(ref, manifest.config().digest().toString(), out);
        JsonNode config = JSON.readTree(out.toByteArray());
        Descriptor.Platform has = new Descriptor.Platform(config.path("os").asText(""),
                config.path("architecture").asText(""), config.path("variant").asText(""));
        if (!has.matches(wanted)) {
            throw new IOException(ref + " is a single-platform image for " + has + ", not " + wanted
                    + "; drop --platform or name a platform the image has");
        }
    }

    private void requirePlatform(ImageReference src, Manifest manifest, Descriptor.Platform wanted) throws IOException {
        requirePlatform(client, src, manifest, wanted);
    }

    /** A source layer, the eStargz layer pushed for it, and what the conversion reported. */
    private record ConvertedLayer(Descriptor original, Descriptor converted, ConvertResult result) {
    }

    private Pushed convertManifest(ImageReference src, Manifest manifest, ImageReference dst, String platform)
            throws IOException {
        Descriptor configDesc = manifest.config();
        ObjectNode config = (ObjectNode) JSON.readTree(fetch(src, configDesc.digest().toString()));
        ArrayNode diffIds = JSON.createArrayNode();
        ArrayNode layers = JSON.createArrayNode();
        List<Descriptor> srcLayers = manifest.layers();
        // A start-up profile spans layers: each layer takes the prioritized paths it holds.
        ConvertOptions perLayer = options.withPrioritizedInAnyLayer(true);
        java.util.Set<String> unplaced = new java.util.LinkedHashSet<>(options.prioritizedFiles());
        List<ConvertedLayer> results = new ArrayList<>();
        for (int i = srcLayers.size() - 1; i >= 0; i--) {
            Descriptor layer = srcLayers.get(i);
            listener.layerStarted(platform, i, srcLayers.size(), layer);
            Path input = Files.createTempFile(workDir, "layer-", ".in");
            Path output = Files.createTempFile(workDir, "layer-", ".esgz");
            try {
                try (OutputStream out = Files.newOutputStream(input)) {
                    client.fetchBlob(src, layer.digest().toString(), out);
                }
                ConvertResult r = new Converter(perLayer, listener::progress).convert(input, output);
                if (!unplaced.isEmpty()) {
                    try (RangeReader blob = RangeReader.open(output)) {
                        TocIndex index = EStargzBlob.open(blob, r.tocDigest()).index();
                        unplaced.removeIf(path -> index.lookup(path) != null);
                    }
                }
                client.pushBlob(dst, r.blobDigest(), output, null);
                Descriptor converted = new Descriptor(MediaTypes.OCI_LAYER_GZIP, Digest.parse(r.blobDigest()), r.blobSize(),
                        java.util.Map.of(Annotations.TOC_DIGEST, r.tocDigest(), Annotations.UNCOMPRESSED_SIZE, Long.toString(r.uncompressedSize())),
                        null);
                results.add(0, new ConvertedLayer(layer, converted, r));
                listener.layerDone(platform, i, converted, r);
            } finally {
                Files.deleteIfExists(input);
                Files.deleteIfExists(output);
            }
        }
        if (!unplaced.isEmpty()) {
            throw new IOException("prioritized " + (unplaced.size() == 1 ? "file " : "files ")
                    + String.join(", ", unplaced.stream().map(p -> "\"" + p + "\"").toList()) + " in no layer of " + src
                    + (platform.isEmpty() ? "" : " (" + platform + ")") + "; fix the --prioritize list");
        }
        for (ConvertedLayer row : results) {
            Descriptor original = row.original();
            Descriptor converted = row.converted();
            ConvertResult r = row.result();
            ObjectNode d = layers.addObject();
            d.put("mediaType", converted.mediaType()).put("digest", converted.digest().toString()).put("size", converted.size());
            ObjectNode annotations = d.putObject("annotations");
            java.util.TreeMap<String, String> merged = new java.util.TreeMap<>(original.annotations());
            merged.putAll(converted.annotations()); // sorted keys: the same manifest bytes on every run
            merged.forEach(annotations::put);
            diffIds.add(r.diffId());
        }
        config.withObjectProperty("rootfs").put("type", "layers").set("diff_ids", diffIds);
        byte[] configBytes = JSON.writeValueAsBytes(config);
        String configDigest = Manifest.sha256(configBytes);
        Path configFile = Files.createTempFile(workDir, "config-", ".json");
        try {
            Files.write(configFile, configBytes);
            client.pushBlob(dst, configDigest, configFile, null);
        } finally {
            Files.deleteIfExists(configFile);
        }
        ObjectNode out = JSON.createObjectNode();
        out.put("schemaVersion", 2).put("mediaType", MediaTypes.OCI_MANIFEST);
        out.putObject("config").put("mediaType", MediaTypes.OCI_CONFIG).put("digest", configDigest)
                .put("size", configBytes.length);
        out.set("layers", layers);
        if (manifest.json().has("annotations")) {
            out.set("annotations", manifest.json().get("annotations"));
        }
        return new Pushed(JSON.writeValueAsBytes(out));
    }

    private byte[] fetch(ImageReference repo, String digest) throws IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        client.fetchBlob(repo, digest, out);
        return out.toByteArray();
    }
}
