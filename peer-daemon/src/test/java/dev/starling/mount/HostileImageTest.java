package dev.starling.mount;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.EntryType;
import dev.starling.estargz.HostileLayers;
import dev.starling.estargz.Processes;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocEntry;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.MountTable;
import dev.starling.fuse.StateFile;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile images through a real mount (FUSE layers under overlayfs) of a real registry, built with
 * a correct TOC digest so they pass the manifest check: what an image may not do to the host, to
 * other images, or to the daemon, checked the way a local user or a tenant would try it.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class HostileImageTest {
    private static final FetchOptions ON_DEMAND = FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false)
            .withFetchUnit(1);

    @TempDir
    Path dir;

    LocalRegistry registry;
    RegistryClient client;

    @BeforeEach
    void start() throws Exception {
        // an unprivileged user must be able to reach the mount point
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        registry = LocalRegistry.start(LocalRegistry.Auth.NONE);
        client = RegistryClient.anonymous();
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        registry.close();
    }

    private ImageReference push(String tag, byte[] blob, String tocDigest) throws Exception {
        Path file = dir.resolve(tag + ".esgz");
        Files.write(file, blob);
        ImageReference ref = registry.ref("hostile/app:" + tag);
        EStargzImages.push(client, ref, List.of(new EStargzImages.Layer(file, tocDigest, Manifest.sha256(blob))));
        return ref;
    }

    private ImageMount mount(ImageReference ref, Path cache, FetchOptions fetch, MountOptions options) throws IOException {
        return ImageMount.mount(client, ref, Descriptor.Platform.parse("linux/amd64"), dir.resolve("rootfs"),
                Files.createDirectories(dir.resolve("work-" + System.nanoTime())), new DiskChunkCache(cache, 1L << 30),
                fetch, options);
    }

    private String state(Path root) throws IOException {
        try (var files = Files.list(root.resolve(StateFile.DIRECTORY))) {
            return Files.readString(files.findFirst().orElseThrow());
        }
    }

    /** Runs {@code command} as nobody; returns exit code and output. */
    private static Processes.Result asNobody(String... command) throws Exception {
        List<String> argv = new ArrayList<>(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"));
        argv.addAll(List.of(command));
        return Processes.runForResult(Path.of("/"), argv.toArray(String[]::new));
    }

    @Test
    void anImageGivesNoLocalUserPrivilegeOnTheHost() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Files.createDirectories(tree.resolve("bin"));
        Files.createDirectories(tree.resolve("dev"));
        Files.copy(Path.of("/usr/bin/id"), tree.resolve("bin/id"));
        Processes.run(tree, "chmod", "4755", "bin/id"); // setuid root, as an image may ship it
        Files.copy(Path.of("/usr/bin/cat"), tree.resolve("bin/cat"));
        Processes.run(tree, "setcap", "cap_dac_read_search+ep", "bin/cat");
        Processes.run(tree, "mknod", "-m", "666", "dev/kmsg", "c", "1", "11");
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve("priv.esgz"), ConvertOptions.defaults());
        ImageReference ref = registry.ref("hostile/app:priv");
        EStargzImages.push(client, ref, List.of(layer));
        try (ImageMount mount = mount(ref, dir.resolve("chunks"), ON_DEMAND, MountOptions.DEFAULTS)) {
            Path root = dir.resolve("rootfs");
            assertEquals(04755, mode(root.resolve("bin/id")), "the image's modes are shown as they are");
            Processes.Result id = asNobody(root.resolve("bin/id").toString(), "-u");
            assertEquals("65534", id.stdout().strip(), "a setuid-root binary of the image does not run as root");
            Processes.Result shadow = asNobody(root.resolve("bin/cat").toString(), "/etc/shadow");
            assertNotEquals(0, shadow.exitCode(), "a file capability of the image gives no power: " + shadow.stdout());
            Processes.Result kmsg = asNobody("sh", "-c", "echo starling-hostile-test > " + root.resolve("dev/kmsg"));
            assertNotEquals(0, kmsg.exitCode(), "a device node of the image does not open the host's device");
            for (MountTable.Entry m : MountTable.read()) {
                if (m.mountPoint().startsWith(dir)) {
                    assertTrue(m.options().contains("nosuid") && m.options().contains("nodev"),
                            "every mount it makes is nosuid,nodev: " + m);
                }
            }
        }
    }

    private static int mode(Path p) throws IOException {
        return (int) Files.getAttribute(p, "unix:mode") & 07777;
    }

    @Test
    void aTocNamingAnotherImagesChunkDoesNotGetItsBytes() throws Exception {
        Path cache = dir.resolve("shared-chunks");
        Path privateTree = Files.createDirectories(dir.resolve("private"));
        String secret = "password=hunter2\n";
        Files.writeString(privateTree.resolve("secret"), secret);
        EStargzImages.Layer privateLayer = EStargzImages.convert(privateTree, dir.resolve("private.esgz"), ConvertOptions.defaults());
        ImageReference privateRef = registry.ref("tenant-a/app:v1");
        EStargzImages.push(client, privateRef, List.of(privateLayer));
        try (ImageMount mount = mount(privateRef, cache, ON_DEMAND, MountOptions.DEFAULTS)) {
            assertEquals(secret, Files.readString(dir.resolve("rootfs/secret")), "tenant A reads its own file: now cached");
        }
        String secretDigest = "sha256:" + HexFormat.of().formatHex(
                MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)));
        Path guessTree = Files.createDirectories(dir.resolve("guess"));
        Files.writeString(guessTree.resolve("secret"), "x".repeat(secret.length()));
        EStargzImages.Layer guess = EStargzImages.convert(guessTree, dir.resolve("guess.esgz"), ConvertOptions.defaults());
        HostileLayers.Edited hostile = HostileLayers.editToc(Files.readAllBytes(guess.blob()), entries -> entries.stream()
                .map(e -> e.name().endsWith("secret")
                        ? HostileLayers.with(e, Map.of("digest", secretDigest, "chunkDigest", secretDigest)) : e)
                .toList());
        ImageReference hostileRef = push("guess", hostile.blob(), hostile.tocDigest());
        try (ImageMount mount = mount(hostileRef, cache, ON_DEMAND, MountOptions.DEFAULTS)) {
            Path root = dir.resolve("rootfs");
            IOException eio = assertThrows(IOException.class, () -> Files.readString(root.resolve("secret")),
                    "tenant B's TOC names tenant A's chunk: B's own blob does not hold it, so the read fails");
            assertTrue(eio.getMessage().contains("Input/output error"), eio.getMessage());
            String s = state(root);
            assertTrue(field(s, "fetchRequests") >= 1, "B's blob was asked, not A's cache: " + s);
            assertTrue(s.contains("\"fetchedPercent\":0.0"), "nothing of A's counts as B's: " + s);
        }
    }

    @Test
    void aHostileTreeFailsOnlyItsOwnReadsAndTheMountKeepsServing() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Files.writeString(tree.resolve("fine"), "fine\n");
        Files.writeString(tree.resolve("deep"), "deep\n");
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve("deep.esgz"), ConvertOptions.defaults());
        String deepName = "d/".repeat(2000) + "deep";
        String wrong = "sha256:" + "00".repeat(32);
        HostileLayers.Edited deep = HostileLayers.editToc(Files.readAllBytes(layer.blob()), entries -> entries.stream()
                .map(e -> e.name().endsWith("deep")
                        ? HostileLayers.with(e, Map.of("name", deepName, "digest", wrong, "chunkDigest", wrong)) : e)
                .toList());
        ImageReference ref = push("deep", deep.blob(), deep.tocDigest());
        try (ImageMount mount = mount(ref, dir.resolve("chunks"), FetchOptions.DEFAULTS.withBackgroundQuietMillis(0),
                MountOptions.DEFAULTS)) {
            Path root = dir.resolve("rootfs");
            Processes.Result read = Processes.runForResult(root, "sh", "-c", "cd " + "d/".repeat(1000) + " && cat "
                    + "d/".repeat(1000) + "deep");
            assertNotEquals(0, read.exitCode(), "the bad chunk 2000 levels down fails that read");
            assertEquals("fine\n", Files.readString(root.resolve("fine")), "and nothing else");
            String s = awaitState(root, st -> st.contains("\"backgroundFetch\":\"done\""));
            assertTrue(s.contains("but the TOC says"), "the failure is in the state: " + s);
            assertEquals("fine\n", Files.readString(root.resolve("fine")));
        }
        HostileLayers.Edited tooDeep = HostileLayers.editToc(Files.readAllBytes(layer.blob()), entries -> entries.stream()
                .map(e -> e.name().endsWith("deep") ? HostileLayers.with(e, Map.of("name", "d/".repeat(400_000) + "deep")) : e)
                .toList());
        ImageReference refused = push("too-deep", tooDeep.blob(), tooDeep.tocDigest());
        IOException e = assertThrows(IOException.class, () -> mount(refused, dir.resolve("chunks"), ON_DEMAND, MountOptions.DEFAULTS));
        assertTrue(e.getMessage().contains("directories deep"), e.getMessage());
    }

    /**
     * 48 one-byte files that each start one byte into a 48 MiB member running to the TOC: a reader
     * that fetched each file's whole span would hold 48 x 48 MiB at once.
     */
    @Test
    void oneByteFilesIntoAHugeMemberFetchLittleAndHoldLittle() throws Exception {
        byte[] data = new byte[48 << 20];
        new Random(3).nextBytes(data);
        ByteArrayOutputStream payload = new ByteArrayOutputStream();
        try (var gz = new java.util.zip.GZIPOutputStream(payload, 1 << 16)) {
            gz.write(data);
        }
        List<TocEntry> entries = new ArrayList<>();
        entries.add(new TocEntry("files/", EntryType.DIR, 0, 0, "", 0755, 0, 0, "", "", 0, 0, 0, 0, Map.of(), "", 0, 0, ""));
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        for (int i = 0; i < 48; i++) {
            int at = 1 + i * 997;
            String digest = "sha256:" + HexFormat.of().formatHex(sha.digest(new byte[] {data[at]}));
            entries.add(new TocEntry("files/f" + i, EntryType.REG, 1, 0, "", 0644, 0, 0, "", "", 0, at, 0, 0, Map.of(),
                    digest, 0, 0, digest));
        }
        byte[] bytes = payload.toByteArray();
        HostileLayers.Edited blob = HostileLayers.withToc(bytes, bytes.length, entries);
        ImageReference ref = push("spans", blob.blob(), blob.tocDigest());
        try (ImageMount mount = mount(ref, dir.resolve("chunks"), ON_DEMAND, MountOptions.DEFAULTS)) {
            Path root = dir.resolve("rootfs");
            ExecutorService readers = Executors.newFixedThreadPool(48);
            List<Future<byte[]>> reads = new ArrayList<>();
            for (int i = 0; i < 48; i++) {
                Path f = root.resolve("files/f" + i);
                reads.add(readers.submit(() -> Files.readAllBytes(f)));
            }
            for (int i = 0; i < 48; i++) {
                assertArrayEquals(new byte[] {data[1 + i * 997]}, reads.get(i).get(60, TimeUnit.SECONDS), "file " + i);
            }
            readers.shutdown();
            String s = state(root);
            assertTrue(field(s, "fetchedBytes") < 48L * (1 << 20),
                    "each read took a little of the member, not all 48 MiB of it: " + s);
        }
    }

    /**
     * A registry that stops answering mid-body while many reads wait on it: those reads may take
     * only the FUSE threads set aside for remote reads (the rest fail at once with EIO), so `stat`
     * and reads of what is cached still answer at once.
     */
    @Test
    void aWedgedRegistryLeavesMetadataAndCachedReadsAnswered() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Files.writeString(tree.resolve("cached"), "cached\n");
        Files.writeString(tree.resolve("named"), "named\n");
        byte[] big = new byte[24 << 20];
        new Random(9).nextBytes(big);
        Files.write(tree.resolve("big"), big);
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve("wedge.esgz"),
                ConvertOptions.defaults().withChunkSize(1 << 20));
        EStargzImages.push(client, registry.ref("hostile/app:wedge"), List.of(layer));
        try (StallingProxy proxy = new StallingProxy(Integer.parseInt(registry.host().split(":")[1]))) {
            ImageReference viaProxy = ImageReference.parse("127.0.0.1:" + proxy.port() + "/hostile/app:wedge");
            MountOptions few = MountOptions.DEFAULTS.withThreads(12, 4).withReadAheadBytes(0);
            try (ImageMount mount = mount(viaProxy, dir.resolve("chunks"), ON_DEMAND, few)) {
                Path root = dir.resolve("rootfs");
                assertEquals("cached\n", Files.readString(root.resolve("cached")));
                Processes.run(root, "dd", "if=cached", "iflag=nocache", "count=0"); // out of the page cache: the next read asks FUSE
                proxy.stall(true);
                List<Process> hung = new ArrayList<>();
                for (int i = 0; i < 20; i++) { // 20 distinct chunks, more than the 12 threads
                    hung.add(new ProcessBuilder("dd", "if=" + root.resolve("big"), "bs=4096", "count=1", "skip=" + (i * 256),
                            "of=/dev/null").redirectErrorStream(true).start());
                }
                Thread.sleep(1500);
                long t0 = System.nanoTime();
                assertTrue(Files.exists(root.resolve("named")), "a lookup never made before");
                assertEquals("cached\n", Files.readString(root.resolve("cached")), "a read the caches answer");
                double seconds = (System.nanoTime() - t0) / 1e9;
                assertTrue(seconds < 2, "metadata and a cached read took " + seconds + " s behind hung reads");
                long failedAtOnce = hung.stream().filter(p -> !p.isAlive() && p.exitValue() != 0).count();
                assertTrue(failedAtOnce > 0, "reads beyond the remote share of threads fail at once instead of waiting");
                proxy.stall(false);
                for (Process p : hung) {
                    assertTrue(p.waitFor(90, TimeUnit.SECONDS), "a hung read ends once the registry answers again");
                }
            }
        }
    }

    private static long field(String state, String name) {
        return StateFiles.field(state, name);
    }

    private String awaitState(Path root, java.util.function.Predicate<String> done) throws Exception {
        return StateFiles.await(() -> state(root), done);
    }
}
