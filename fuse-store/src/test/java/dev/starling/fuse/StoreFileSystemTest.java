package dev.starling.fuse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.Processes;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Additional Layer Store's tree through a real FUSE mount, with layers from local blobs in
 * place of the daemon's resolver: what containers/storage does to it (stat diff/info/blob, create
 * use, rmdir) and what it must refuse. The TTL runs on a clock the test moves.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StoreFileSystemTest {
    private static final String IMAGE = "registry.example.com/team/app:v1";
    private static final String PLAIN = "registry.example.com/team/plain:v1";
    private static final String FLAKY = "registry.example.com/team/flaky:v1";

    @TempDir
    Path dir;

    private final AtomicLong clock = new AtomicLong();
    private final AtomicInteger opens = new AtomicInteger();
    private final AtomicInteger releases = new AtomicInteger();
    private final AtomicInteger flakyFailures = new AtomicInteger(1);
    private final Map<String, EStargzBlob> blobs = new HashMap<>();
    private final Map<String, Path> blobFiles = new HashMap<>();
    private StoreMount store;
    private String keyA;
    private String keyB;

    private String layer(String name, String file, byte[] content) throws Exception {
        Path tree = Files.createDirectories(dir.resolve(name));
        Files.write(tree.resolve(file), content);
        Path tar = dir.resolve(name + ".tar");
        Processes.run(tree, "tar", "--format=posix", "--numeric-owner", "-cf", tar.toString(), ".");
        Path blob = dir.resolve(name + ".esgz");
        ConvertResult r = Converter.convert(tar, blob, ConvertOptions.defaults());
        blobs.put(r.tocDigest(), EStargzBlob.open(RangeReader.open(blob), r.tocDigest()));
        blobFiles.put(r.tocDigest(), blob);
        return r.tocDigest();
    }

    private final LayerSource layers = new LayerSource() {
        @Override
        public void checkReference(String imageRef) {
            if (!imageRef.matches("[a-z0-9.:/_-]+(:[A-Za-z0-9._-]+)?")) {
                throw new IllegalArgumentException("not a reference");
            }
        }

        @Override
        public ServedLayer open(String imageRef, String key) throws IOException {
            if (imageRef.equals(FLAKY) && flakyFailures.getAndDecrement() > 0) {
                throw new IOException("the registry timed out");
            }
            EStargzBlob blob = blobs.get(key);
            if (blob == null || imageRef.equals(PLAIN)) {
                throw new NoSuchFileException(imageRef + " has no eStargz layer " + key);
            }
            opens.incrementAndGet();
            byte[] info = ("{\"toc-digest\":\"" + key + "\"}\n").getBytes(StandardCharsets.UTF_8);
            RangeReader raw = RangeReader.open(blobFiles.get(key));
            return new ServedLayer(blob.index(), blob::readChunk, info, raw, raw.size(), null, () -> {
                releases.incrementAndGet();
                try {
                    raw.close();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        }
    };

    @BeforeEach
    void mount() throws Exception {
        keyA = layer("a", "hello.txt", "layer a\n".getBytes(StandardCharsets.UTF_8));
        byte[] big = new byte[3 << 20];
        new Random(5).nextBytes(big);
        keyB = layer("b", "model.bin", big);
        store = StoreMount.mount(layers, dir.resolve("store"), MountOptions.DEFAULTS, Duration.ofSeconds(30), clock::get);
    }

    @AfterEach
    void unmount() throws IOException {
        store.close();
    }

    private Path layerDir(String image, String key) {
        return store.mountPoint().resolve(Base64.getEncoder().encodeToString(image.getBytes(StandardCharsets.UTF_8))).resolve(key);
    }

    private static long ino(Path p) throws IOException {
        return ((Number) Files.getAttribute(p, "unix:ino")).longValue();
    }

    @Test
    void aLayerIsItsTreeItsInfoAndItsBlobUnderItsImageAndKey() throws Exception {
        Path a = layerDir(IMAGE, keyA);
        Path b = layerDir(IMAGE, keyB);
        assertEquals("layer a\n", Files.readString(a.resolve("diff/hello.txt")));
        assertEquals("{\"toc-digest\":\"" + keyA + "\"}\n", Files.readString(a.resolve("info")));
        assertArrayEquals(Files.readAllBytes(blobFiles.get(keyB)), Files.readAllBytes(b.resolve("blob")), "blob is the raw blob");
        assertEquals(Files.size(blobFiles.get(keyB)), Files.size(b.resolve("blob")));
        assertEquals(3 << 20, Files.size(b.resolve("diff/model.bin")));
        assertNotEquals(ino(a.resolve("diff")), ino(b.resolve("diff")), "two layers of one mount keep their inode numbers apart");
        assertTrue(Files.isDirectory(a) && Files.isDirectory(a.resolve("diff")));
        assertEquals(2, opens.get(), "each layer opened once, however often it is looked up");
        try (var listing = Files.list(a)) {
            assertEquals(java.util.Set.of("diff", "info", "blob"),
                    java.util.Set.copyOf(listing.map(p -> p.getFileName().toString()).toList()), "what an operator sees listing it");
        }
    }

    @Test
    void namesThatAreNotBase64ReferencesOrDigestsAreInvalid() {
        for (Path bad : new Path[] {store.mountPoint().resolve("not base64!").resolve(keyA),
                layerDir("Not A Reference!", keyA), layerDir(IMAGE, "sha256:xyz"), layerDir(IMAGE, "md5:" + keyA.substring(7))}) {
            FileSystemException e = assertThrows(FileSystemException.class, () -> Files.readAttributes(bad.resolve("diff"), "unix:ino"),
                    bad.toString());
            assertTrue(String.valueOf(e.getReason()).contains("Invalid argument"), bad + ": " + e.getReason());
        }
    }

    @Test
    void anUnknownImageOrANonEStargzLayerIsAbsentSoTheRuntimePullsItItself() {
        assertThrows(NoSuchFileException.class, () -> Files.size(layerDir(PLAIN, keyA).resolve("info")));
        assertThrows(NoSuchFileException.class, () -> Files.size(layerDir(IMAGE, "sha256:" + "0".repeat(64)).resolve("diff")));
        assertThrows(NoSuchFileException.class, () -> Files.size(layerDir(IMAGE, keyA).resolve("other")));
        assertThrows(NoSuchFileException.class, () -> Files.size(layerDir(IMAGE, keyA).resolve("use")), "use never exists");
    }

    @Test
    void aFailedResolutionIsAnIoErrorAndTheNextLookupTriesAgain() throws Exception {
        FileSystemException e = assertThrows(FileSystemException.class, () -> Files.readString(layerDir(FLAKY, keyA).resolve("info")));
        assertTrue(String.valueOf(e.getReason()).contains("Input/output error"), e.getReason());
        assertEquals("{\"toc-digest\":\"" + keyA + "\"}\n", Files.readString(layerDir(FLAKY, keyA).resolve("info")));
    }

    @Test
    void useAndRmdirCountUsersAndAnIdleLayerIsReleasedAfterTheTtl() throws Exception {
        Path a = layerDir(IMAGE, keyA);
        assertThrows(NoSuchFileException.class, () -> Files.createFile(a.resolve("use")), "marking use answers ENOENT");
        assertThrows(NoSuchFileException.class, () -> Files.createFile(a.resolve("use")));
        assertEquals(2, store.fileSystem().held().getFirst().users());
        assertThrows(NoSuchFileException.class, () -> Files.delete(a), "rmdir lets one user go, answering ENOENT");
        assertEquals(1, store.fileSystem().held().getFirst().users());
        clock.addAndGet(Duration.ofHours(1).toNanos());
        assertEquals(0, store.fileSystem().sweep(), "a layer with a user stays, however long");
        assertThrows(NoSuchFileException.class, () -> Files.delete(a));
        try (InputStream open = Files.newInputStream(a.resolve("diff/hello.txt"))) {
            clock.addAndGet(Duration.ofHours(1).toNanos());
            assertEquals(0, store.fileSystem().sweep(), "so does one with an open file");
            assertEquals("layer a\n", new String(open.readAllBytes(), StandardCharsets.UTF_8));
        }
        for (int i = 0; i < 200 && store.fileSystem().held().getFirst().openFiles() > 0; i++) {
            Thread.sleep(10); // the kernel sends RELEASE after close(2) returns, not before
        }
        assertEquals(0, store.fileSystem().held().getFirst().openFiles(), "closing the file let it go");
        clock.addAndGet(Duration.ofSeconds(29).toNanos());
        assertEquals(0, store.fileSystem().sweep(), "idle for less than the TTL: kept");
        clock.addAndGet(Duration.ofSeconds(1).toNanos());
        assertEquals(1, store.fileSystem().sweep(), "idle for the TTL: released");
        assertEquals(1, releases.get());
        assertEquals(0, store.fileSystem().held().size());
        assertEquals("layer a\n", Files.readString(a.resolve("diff/hello.txt")), "a later lookup opens it again");
        assertEquals(2, opens.get());
        FileSystemException untracked = assertThrows(FileSystemException.class, () -> Files.delete(layerDir(IMAGE, keyB)));
        assertTrue(String.valueOf(untracked.getReason()).contains("Input/output error"), "rmdir of a layer not held: " + untracked);
    }

    @Test
    void nothingInTheStoreCanBeWritten() throws Exception {
        Path a = layerDir(IMAGE, keyA);
        Files.readString(a.resolve("diff/hello.txt"));
        for (IoAction write : new IoAction[] {
                () -> Files.writeString(a.resolve("diff/hello.txt"), "changed"),
                () -> Files.writeString(a.resolve("info"), "{}"),
                () -> Files.createFile(a.resolve("diff/new.txt")),
                () -> Files.createDirectory(a.resolve("diff/newdir")),
                () -> Files.delete(a.resolve("diff/hello.txt")),
                () -> Files.move(a.resolve("diff/hello.txt"), a.resolve("diff/moved.txt")),
                () -> Files.createSymbolicLink(a.resolve("diff/link"), Path.of("hello.txt")),
                () -> Files.setLastModifiedTime(a.resolve("diff/hello.txt"), java.nio.file.attribute.FileTime.fromMillis(0))}) {
            FileSystemException e = assertThrows(FileSystemException.class, write::run);
            assertTrue(String.valueOf(e.getReason()).contains("Read-only file system") || e instanceof java.nio.file.AccessDeniedException,
                    e.toString());
        }
        assertEquals("layer a\n", Files.readString(a.resolve("diff/hello.txt")));
    }

    @Test
    void anUnprivilegedUserCannotEnterTheStore() throws Exception {
        Path info = layerDir(IMAGE, keyA).resolve("info");
        Files.readString(info);
        Processes.Result r = Processes.runForResult(dir, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "cat", info.toString());
        assertNotEquals(0, r.exitCode(), "nobody reads nothing of the store: " + r.stdout());
        assertTrue(r.stdout().contains("Permission denied"), r.stdout());
    }

    @FunctionalInterface
    private interface IoAction {
        void run() throws IOException;
    }
}
