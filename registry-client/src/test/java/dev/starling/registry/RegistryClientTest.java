package dev.starling.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Push, pull and range reads against a real registry (Debian's docker-registry), anonymous. */
class RegistryClientTest {
    static LocalRegistry registry;
    static RegistryClient client;
    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
        client = new RegistryClient(RegistryClient.Settings.defaults().withUploadChunk(1 << 20));
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        registry.close();
    }

    static String pushRandomBlob(ImageReference repo, int seed, int size) throws Exception {
        byte[] data = new byte[size];
        new Random(seed).nextBytes(data);
        Path file = dir.resolve("blob-" + seed);
        Files.write(file, data);
        String digest = Manifest.sha256(data);
        assertEquals(BlobPusher.Outcome.UPLOADED, client.pushBlob(repo, digest, file, null));
        return digest;
    }

    @Test
    void pushedBlobsReadBackByRangeAndWhole() throws Exception {
        ImageReference repo = registry.ref("ranges/app:v1");
        for (int size : new int[] {10, 100_000, 3 * 1024 * 1024 + 17}) { // monolithic, and PATCH chunks of 1 MiB
            byte[] data = new byte[size];
            new Random(size).nextBytes(data);
            Path file = dir.resolve("data-" + size);
            Files.write(file, data);
            String digest = Manifest.sha256(data);
            assertFalse(client.blobExists(repo, digest));
            assertEquals(BlobPusher.Outcome.UPLOADED, client.pushBlob(repo, digest, file, null));
            assertTrue(client.blobExists(repo, digest));
            assertEquals(BlobPusher.Outcome.ALREADY_THERE, client.pushBlob(repo, digest, file, null));
            assertEquals(size, client.blobSize(repo, digest));
            Random r = new Random(1);
            for (int i = 0; i < 20; i++) {
                int offset = r.nextInt(size);
                int length = 1 + r.nextInt(Math.min(size - offset, 200_000));
                assertArrayEquals(Arrays.copyOfRange(data, offset, offset + length),
                        client.readBlob(repo, digest, offset, length), "range " + offset + "+" + length);
            }
            ByteArrayOutputStream whole = new ByteArrayOutputStream();
            client.fetchBlob(repo, digest, whole);
            assertArrayEquals(data, whole.toByteArray());
        }
    }

    @Test
    void manifestsRoundTripWithAnnotationsByTagAndByDigest() throws Exception {
        ImageReference ref = registry.ref("manifests/app:v1");
        String config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
        Path configFile = dir.resolve("config.json");
        Files.writeString(configFile, config);
        String configDigest = Manifest.sha256(config.getBytes(StandardCharsets.UTF_8));
        client.pushBlob(ref, configDigest, configFile, null);
        String layer = pushRandomBlob(ref, 5, 1000);
        String manifest = """
                {"schemaVersion":2,"mediaType":"%s",
                 "config":{"mediaType":"%s","digest":"%s","size":%d},
                 "layers":[{"mediaType":"%s","digest":"%s","size":1000,
                   "annotations":{"containerd.io/snapshot/stargz/toc.digest":"sha256:abc"}}]}"""
                .formatted(MediaTypes.OCI_MANIFEST, MediaTypes.OCI_CONFIG, configDigest, config.length(),
                        MediaTypes.OCI_LAYER_GZIP, layer);
        byte[] bytes = manifest.getBytes(StandardCharsets.UTF_8);
        String digest = client.pushManifest(ref, bytes, MediaTypes.OCI_MANIFEST);
        Manifest byTag = client.manifest(ref);
        assertEquals(digest, byTag.digest());
        assertArrayEquals(bytes, byTag.raw(), "served byte for byte");
        assertEquals("sha256:abc", byTag.layers().getFirst().annotations().get("containerd.io/snapshot/stargz/toc.digest"));
        assertEquals(configDigest, byTag.config().digest().toString());
        Manifest byDigest = client.manifest(ref.withDigest(digest).withTag(null).withDigest(digest));
        assertEquals(digest, byDigest.digest());
    }

    @Test
    void crossRepositoryMountAvoidsTheUpload() throws Exception {
        ImageReference from = registry.ref("mount/source:v1");
        String digest = pushRandomBlob(from, 9, 50_000);
        ImageReference to = registry.ref("mount/target:v1");
        Path file = dir.resolve("blob-9");
        assertEquals(BlobPusher.Outcome.MOUNTED, client.pushBlob(to, digest, file, from));
        assertEquals(50_000, client.blobSize(to, digest));
    }

    @Test
    void missingThingsAreNamedInTheError() {
        ImageReference ref = registry.ref("nothing/here:v1");
        NotFoundException m = assertThrows(NotFoundException.class, () -> client.manifest(ref));
        assertEquals(404, m.status());
        assertTrue(m.getMessage().contains("nothing/here:v1"), m.getMessage());
        String digest = "sha256:" + "0".repeat(64);
        NotFoundException b = assertThrows(NotFoundException.class, () -> client.blobSize(ref, digest));
        assertTrue(b.getMessage().contains(digest), b.getMessage());
    }

    @Test
    void multiRangeReadsComeBackInOneRequestInTheOrderAsked() throws Exception {
        ImageReference repo = registry.ref("multirange/app:v1");
        byte[] data = new byte[500_000];
        new Random(77).nextBytes(data);
        Path file = dir.resolve("multi");
        Files.write(file, data);
        String digest = Manifest.sha256(data);
        client.pushBlob(repo, digest, file, null);
        java.util.List<ByteRange> ranges = java.util.List.of(new ByteRange(400_000, 1000), new ByteRange(10, 20),
                new ByteRange(25, 100), new ByteRange(200_000, 50_000));
        java.util.List<byte[]> parts = client.readBlobRanges(repo, digest, ranges);
        for (int i = 0; i < ranges.size(); i++) {
            ByteRange r = ranges.get(i);
            assertArrayEquals(Arrays.copyOfRange(data, (int) r.offset(), (int) r.end()), parts.get(i), r.toString());
        }
    }

    @Test
    void identicalConcurrentReadsShareOneRequest() throws Exception {
        ImageReference repo = registry.ref("singleflight/app:v1");
        String digest = pushRandomBlob(repo, 31, 4 << 20);
        int before = countBlobGets(digest);
        var pool = java.util.concurrent.Executors.newFixedThreadPool(8);
        try {
            var futures = new java.util.ArrayList<java.util.concurrent.Future<byte[]>>();
            for (int i = 0; i < 8; i++) {
                futures.add(pool.submit(() -> client.readBlob(repo, digest, 0, 4 << 20)));
            }
            byte[] first = futures.getFirst().get();
            for (var f : futures) {
                assertArrayEquals(first, f.get());
            }
        } finally {
            pool.shutdown();
        }
        int requests = countBlobGets(digest) - before;
        assertTrue(requests >= 1 && requests < 8, "8 identical reads took " + requests + " requests");
    }

    /** GETs of a blob as the registry logged them (its JSON access log). */
    static int countBlobGets(String digest) throws Exception {
        Thread.sleep(200);
        int n = 0;
        for (String line : registry.log().split("\n")) {
            if (line.contains("\"http.request.method\":\"GET\"") && line.contains("/blobs/" + digest)
                    && line.contains("response completed")) {
                n++;
            }
        }
        return n;
    }
}
