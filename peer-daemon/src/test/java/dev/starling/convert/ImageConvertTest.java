package dev.starling.convert;

import dev.starling.estargz.Annotations;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starling.cli.StarlingCli;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.Processes;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.MediaTypes;
import dev.starling.registry.RegistryClient;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code starling convert SRC_REF DST_REF} against a real registry: an image built here (Docker
 * media types, two layers, and a two-platform index) is converted, pulled back and checked the way
 * a runtime would: OCI media types, annotations seen by skopeo, DiffIDs, and every layer verified.
 */
class ImageConvertTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static LocalRegistry registry;
    static RegistryClient client;
    @TempDir
    static Path dir;
    static List<String> layerDigests = new ArrayList<>();
    static String singleDigest;

    @BeforeAll
    static void pushSourceImage() throws Exception {
        registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
        client = RegistryClient.anonymous();
        Processes.run(dir, "sh", "-c", "mkdir -p base/etc app/opt/app && echo base > base/etc/os-release"
                + " && head -c 200000 /dev/urandom > base/etc/blob && echo 'print(1)' > app/opt/app/main.py"
                + " && echo data > app/opt/app/data.txt"
                + " && tar -C base -czf base.tar.gz . && tar -C app -czf app.tar.gz .");
        ImageReference src = registry.ref("source/app:v1");
        List<String> diffIds = new ArrayList<>();
        StringBuilder layers = new StringBuilder();
        for (String name : List.of("base.tar.gz", "app.tar.gz")) {
            Path file = dir.resolve(name);
            byte[] bytes = Files.readAllBytes(file);
            String digest = Manifest.sha256(bytes);
            client.pushBlob(src, digest, file, null);
            layerDigests.add(digest);
            try (InputStream in = new GZIPInputStream(Files.newInputStream(file))) {
                diffIds.add(Manifest.sha256(in.readAllBytes()));
            }
            layers.append(layers.isEmpty() ? "" : ",").append("{\"mediaType\":\"").append(MediaTypes.DOCKER_LAYER_GZIP)
                    .append("\",\"digest\":\"").append(digest).append("\",\"size\":").append(bytes.length).append("}");
        }
        byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"python3\"]},"
                + "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":" + JSON.writeValueAsString(diffIds) + "}}")
                .getBytes(StandardCharsets.UTF_8);
        Path configFile = dir.resolve("config.json");
        Files.write(configFile, config);
        client.pushBlob(src, Manifest.sha256(config), configFile, null);
        byte[] manifest = ("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.DOCKER_MANIFEST + "\",\"config\":{"
                + "\"mediaType\":\"" + MediaTypes.DOCKER_CONFIG + "\",\"digest\":\"" + Manifest.sha256(config)
                + "\",\"size\":" + config.length + "},\"layers\":[" + layers + "]}").getBytes(StandardCharsets.UTF_8);
        singleDigest = client.pushManifest(src, manifest, MediaTypes.DOCKER_MANIFEST);
        byte[] index = ("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_INDEX + "\",\"manifests\":["
                + entry(manifest, "amd64") + "," + entry(manifest, "arm64") + "]}").getBytes(StandardCharsets.UTF_8);
        client.pushManifest(registry.ref("source/app:multi"), index, MediaTypes.OCI_INDEX);
    }

    static String entry(byte[] manifest, String arch) {
        return "{\"mediaType\":\"" + MediaTypes.DOCKER_MANIFEST + "\",\"digest\":\"" + Manifest.sha256(manifest)
                + "\",\"size\":" + manifest.length + ",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch + "\"}}";
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        registry.close();
    }

    @Test
    void convertsEveryLayerRewritesDiffIdsAndAnnotates() throws Exception {
        Path prioritize = dir.resolve("prio.txt");
        Files.writeString(prioritize, "opt/app/main.py\n");
        ImageReference dst = registry.ref("converted/app:esgz");
        assertEquals(0, StarlingCli.run("convert", "--prioritize", prioritize.toString(),
                registry.ref("source/app:v1").toString(), dst.toString()));

        Manifest m = client.manifest(dst);
        assertEquals(MediaTypes.OCI_MANIFEST, m.mediaType());
        assertEquals(MediaTypes.OCI_CONFIG, m.config().mediaType());
        JsonNode config = JSON.readTree(fetch(dst, m.config().digest().toString()));
        assertEquals("python3", config.path("config").path("Cmd").get(0).asText(), "the rest of the config is kept");
        List<Descriptor> layers = m.layers();
        assertEquals(2, layers.size());
        for (int i = 0; i < layers.size(); i++) {
            Descriptor layer = layers.get(i);
            assertEquals(MediaTypes.OCI_LAYER_GZIP, layer.mediaType());
            String toc = layer.annotations().get(Annotations.TOC_DIGEST);
            assertNotNull(toc, "toc.digest annotation on layer " + i);
            byte[] blob = fetch(dst, layer.digest().toString());
            byte[] decompressed;
            try (InputStream in = new GZIPInputStream(new java.io.ByteArrayInputStream(blob))) {
                decompressed = in.readAllBytes();
            }
            assertEquals(Long.toString(decompressed.length), layer.annotations().get(Annotations.UNCOMPRESSED_SIZE));
            assertEquals(Manifest.sha256(decompressed), config.path("rootfs").path("diff_ids").get(i).asText(),
                    "DiffID of layer " + i);
            Path blobFile = dir.resolve("layer" + i + ".esgz");
            Files.write(blobFile, blob);
            assertEquals(0, StarlingCli.run("inspect", "--toc-digest", toc, blobFile.toString()), "layer " + i + " verifies");
            TocIndex index = EStargzBlob.open(RangeReader.of(blob), toc).index();
            if (i == 1) {
                assertTrue(index.prioritizedEnd() > 0, "the layer holding main.py is prioritized");
            } else {
                assertTrue(index.noPrefetch(), "the other layer has no profile");
            }
        }
        String raw = Processes.run(dir, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + dst);
        assertTrue(raw.contains(Annotations.TOC_DIGEST), "skopeo sees the annotations: " + raw);
        assertTrue(raw.contains(layers.getFirst().annotations().get(Annotations.TOC_DIGEST)));
    }

    @Test
    void multiPlatformIndexConvertsEveryPlatformOrTheOneAskedFor() throws Exception {
        ImageReference all = registry.ref("converted/multi:all");
        assertEquals(0, StarlingCli.run("convert", registry.ref("source/app:multi").toString(), all.toString()));
        Manifest index = client.manifest(all);
        assertTrue(index.isIndex());
        assertEquals(List.of("linux/amd64", "linux/arm64"),
                index.manifests().stream().map(d -> d.platform().toString()).toList());
        for (Descriptor d : index.manifests()) {
            Manifest platformManifest = client.manifest(all.withDigest(d.digest().toString()));
            assertEquals(MediaTypes.OCI_MANIFEST, platformManifest.mediaType());
            assertNotNull(platformManifest.layers().getFirst().annotations().get(Annotations.TOC_DIGEST));
        }
        ImageReference one = registry.ref("converted/multi:arm64");
        assertEquals(0, StarlingCli.run("convert", "--platform", "linux/arm64", registry.ref("source/app:multi").toString(),
                one.toString()));
        assertEquals(MediaTypes.OCI_MANIFEST, client.manifest(one).mediaType());
    }

    @Test
    void missingSourceAndMissingPrioritizedPathAreClearErrors() throws Exception {
        assertEquals(1, StarlingCli.run("convert", registry.ref("nope/none:v1").toString(),
                registry.ref("x/y:z").toString()));
        Path prioritize = dir.resolve("bad-prio.txt");
        Files.writeString(prioritize, "not/in/any/layer\n");
        assertEquals(1, StarlingCli.run("convert", "--prioritize", prioritize.toString(),
                registry.ref("source/app:v1").toString(), registry.ref("x/y:z").toString()));
    }

    @Test
    void aStartUpProfileSpanningLayersPrioritizesEachLayersOwnFiles() throws Exception {
        Path prioritize = dir.resolve("both.txt");
        Files.writeString(prioritize, "etc/os-release\nopt/app/main.py\n");
        ImageReference dst = registry.ref("converted/app:both");
        assertEquals(0, StarlingCli.run("convert", "--prioritize", prioritize.toString(),
                registry.ref("source/app:v1").toString(), dst.toString()));
        for (Descriptor layer : client.manifest(dst).layers()) {
            TocIndex index = EStargzBlob.open(RangeReader.of(fetch(dst, layer.digest().toString())),
                    layer.annotations().get(Annotations.TOC_DIGEST)).index();
            assertTrue(index.prioritizedEnd() > 0, "each layer holding a listed file is prioritized: " + layer.digest());
        }
        Files.writeString(prioritize, "etc/os-release\nnot/in/any/layer\n");
        dev.starling.cli.CliTest.Result r = dev.starling.cli.CliTest.starling("convert", "--prioritize", prioritize.toString(),
                registry.ref("source/app:v1").toString(), registry.ref("x/y:z").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("prioritized file \"not/in/any/layer\" in no layer of"), r.err());
    }

    @Test
    void theSameConversionPushesTheSameManifest() throws Exception {
        List<String> digests = new ArrayList<>();
        for (int run = 0; run < 3; run++) {
            ImageReference dst = registry.ref("converted/repro:run" + run);
            new ImageConverter(client, ConvertOptions.defaults(), dir, ImageConverter.Listener.NONE)
                    .convert(registry.ref("source/app:v1"), dst, null);
            digests.add(client.manifest(dst).digest());
        }
        assertEquals(1, new java.util.HashSet<>(digests).size(), "byte-for-byte the same manifest: " + digests);
    }

    @Test
    void aPlatformTheImageDoesNotHaveIsRefused() throws Exception {
        dev.starling.cli.CliTest.Result r = dev.starling.cli.CliTest.starling("convert", "--platform", "linux/arm64",
                registry.ref("source/app:v1").toString(), registry.ref("converted/app:arm").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("single-platform image for linux/amd64, not linux/arm64"), r.err());
    }

    @Test
    void jsonPrintsTheResultOfAnImageConversion() throws Exception {
        dev.starling.cli.CliTest.Result r = dev.starling.cli.CliTest.starling("convert", "--json",
                registry.ref("source/app:v1").toString(), registry.ref("converted/app:json").toString());
        assertEquals(0, r.code(), r.err());
        JsonNode out = JSON.readTree(r.out());
        assertEquals(client.manifest(registry.ref("converted/app:json")).digest(), out.path("digest").asText());
        assertEquals(2, out.path("layers").size());
        assertTrue(out.path("layers").get(0).path("tocDigest").asText().startsWith("sha256:"));
    }

    static byte[] fetch(ImageReference repo, String digest) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        client.fetchBlob(repo, digest, out);
        return out.toByteArray();
    }

    @Test
    void sourceIsReadThroughAMirrorWhenOneIsConfigured() throws Exception {
        try (LocalRegistry mirror = LocalRegistry.start(LocalRegistry.Auth.NONE)) {
            // The mirror holds the source image under the same repository, as a pull-through cache would.
            ImageReference original = registry.ref("source/app:v1");
            Manifest m = client.manifest(original);
            ImageReference inMirror = mirror.ref("source/app:v1");
            for (Descriptor d : m.layers()) {
                client.pushBlob(inMirror, d.digest().toString(), dir.resolve(d.digest().toString().equals(layerDigests.get(0)) ? "base.tar.gz"
                        : "app.tar.gz"), null);
            }
            client.pushBlob(inMirror, m.config().digest().toString(), dir.resolve("config.json"), null);
            client.pushManifest(inMirror, m.raw(), m.mediaType());
            int before = countRequests(registry, "GET", "/v2/source/app/blobs/");
            assertEquals(0, StarlingCli.run("convert", "--registry-mirror", registry.host() + "=" + mirror.host(),
                    original.toString(), registry.ref("converted/mirrored:esgz").toString()));
            assertEquals(before, countRequests(registry, "GET", "/v2/source/app/blobs/"),
                    "no source blob was read from the registry itself");
            assertTrue(countRequests(mirror, "GET", "ns=127.0.0.1") >= 3, "the mirror served them, with ?ns=");
        }
    }

    static int countRequests(LocalRegistry r, String method, String uriPart) throws Exception {
        Thread.sleep(200);
        int n = 0;
        for (String line : r.log().split("\n")) {
            if (line.contains("\"http.request.method\":\"" + method + "\"") && line.contains(uriPart)
                    && line.contains("response completed")) {
                n++;
            }
        }
        return n;
    }
}
