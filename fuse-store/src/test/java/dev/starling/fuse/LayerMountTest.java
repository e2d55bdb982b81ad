package dev.starling.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.Processes;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TreeDescription;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real FUSE mounts of converted layers, compared with {@code tar -x} of the same input: names,
 * types, modes, owners, sizes, times, link targets, hardlink inodes, xattrs, device numbers and
 * every file's bytes. Whiteouts and opaque directories are checked through a real overlay mount.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class LayerMountTest {
    @TempDir
    Path dir;

    private Path tar(Path tree, String name) throws Exception {
        Path out = dir.resolve(name);
        Processes.run(tree, "tar", "--format=posix", "--xattrs", "--xattrs-include=user.*", "--numeric-owner", "-cf",
                out.toString(), ".");
        return out;
    }

    private record Mounted(LayerMount mount, RangeReader reader) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            mount.close();
            reader.close();
        }
    }

    private Mounted mount(Path tar, String name) throws Exception {
        Path blob = dir.resolve(name + ".esgz");
        ConvertResult r = Converter.convert(tar, blob, ConvertOptions.defaults().withChunkSize(1 << 20));
        RangeReader reader = RangeReader.open(blob);
        EStargzBlob opened = EStargzBlob.open(reader, r.tocDigest());
        return new Mounted(LayerMount.mount(opened.index(), opened::readChunk, dir.resolve("mnt-" + name), name), reader);
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"app@abc,suid,dev", "app@abc\nx", "", "a b", "app@abc=1"})
    void aMountNameThatCouldCarryOptionsIsRefused(String name) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LayerMount.checkOptionValue(name));
        assertTrue(e.getMessage().contains("a mount option cannot carry"), e.getMessage());
    }

    @Test
    void referencesAndDigestsAreFineAsMountNames() {
        LayerMount.checkOptionValue("registry.example.com:5000/team/app@0123456789ab");
    }

    @Test
    void mountedLayerIsTheSameTreeAsTarExtracts() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Files.createDirectories(tree.resolve("etc/conf.d"));
        Files.writeString(tree.resolve("etc/hostname"), "starling\n");
        Files.writeString(tree.resolve("etc/empty"), "");
        byte[] big = new byte[3 * 1024 * 1024 + 4321];
        new Random(5).nextBytes(big);
        Files.write(tree.resolve("big.bin"), big);
        Files.createDirectories(tree.resolve("bin"));
        Files.writeString(tree.resolve("bin/tool"), "#!/bin/sh\necho tool\n");
        Files.createLink(tree.resolve("bin/tool-hardlink"), tree.resolve("bin/tool"));
        Files.createSymbolicLink(tree.resolve("bin/sym"), Path.of("tool"));
        Files.createSymbolicLink(tree.resolve("dangling"), Path.of("../nowhere"));
        Files.createDirectories(tree.resolve("unicodé/" + "l".repeat(120)));
        Files.writeString(tree.resolve("unicodé/" + "l".repeat(120) + "/naïve.txt"), "ünïcödé\n");
        Files.createDirectories(tree.resolve("tmp"));
        Processes.run(tree, "mkfifo", "fifo");
        Processes.run(tree, "mknod", "null", "c", "1", "3");
        Processes.run(tree, "mknod", "sda", "b", "8", "0");
        Processes.run(tree, "chmod", "1777", "tmp");
        Processes.run(tree, "chmod", "4755", "bin/tool");
        Processes.run(tree, "chmod", "2750", "etc/conf.d");
        Processes.run(tree, "chown", "-h", "1234:5678", "etc/hostname", "bin/sym");
        Processes.run(tree, "setfattr", "-n", "user.starling", "-v", "0xfffe00", "etc/hostname");
        Path input = tar(tree, "layer.tar");
        Path expected = Files.createDirectories(dir.resolve("expected"));
        Processes.run(expected, "tar", "--xattrs", "--xattrs-include=user.*", "--numeric-owner", "--same-owner", "-xpf",
                input.toString());
        try (Mounted m = mount(input, "layer")) {
            Path mnt = m.mount().mountPoint();
            assertEquals(TreeDescription.of(expected, true), TreeDescription.of(mnt, true));
            assertEquals(List.of("big.bin", "bin", "dangling", "etc", "fifo", "null", "sda", "tmp", "unicodé"), names(mnt),
                    "the landmark is hidden at the root");
            byte[] middle = new byte[100];
            try (var ch = java.nio.channels.FileChannel.open(mnt.resolve("big.bin"))) {
                ch.read(java.nio.ByteBuffer.wrap(middle), (1 << 20) - 50); // across a chunk boundary
            }
            assertEquals(java.util.HexFormat.of().formatHex(big, (1 << 20) - 50, (1 << 20) + 50),
                    java.util.HexFormat.of().formatHex(middle));
            assertThrows(java.nio.file.FileSystemException.class, () -> Files.writeString(mnt.resolve("etc/new"), "x"));
        }
    }

    /** Every layer ctr-remote converted for the compatibility vectors mounts as GNU tar extracts the same blob. */
    @Test
    void layersConvertedByCtrRemoteMountAsTarExtractsThem() throws Exception {
        int layers = 0;
        for (String vector : List.of("basic", "basic-chunk4k", "basic-level1", "basic-zstdchunked", "many", "two-layers")) {
            String expected = resource("vectors/ctr-remote/" + vector + "/expected.json");
            var toc = java.util.regex.Pattern.compile("toc\\.digest\": \"(sha256:[0-9a-f]{64})\"").matcher(expected);
            var file = java.util.regex.Pattern.compile("\"file\": \"([^\"]+)\"").matcher(expected);
            while (toc.find() && file.find()) {
                String name = vector + "-" + file.group(1);
                Path blob = dir.resolve(name);
                try (var in = getClass().getClassLoader().getResourceAsStream("vectors/ctr-remote/" + vector + "/" + file.group(1))) {
                    Files.copy(in, blob);
                }
                Path extracted = Files.createDirectories(dir.resolve("x-" + name));
                Processes.run(extracted, "tar", vector.contains("zstd") ? "--zstd" : "-z", "--numeric-owner", "--same-owner",
                        "-xpf", blob.toString());
                // what a tar extraction shows and the mounted layer must not: the TOC entry and root landmarks
                for (String hidden : List.of(EStargzBlob.TOC_NAME, ".prefetch.landmark", ".no.prefetch.landmark")) {
                    Files.deleteIfExists(extracted.resolve(hidden));
                }
                toOverlayForm(extracted);
                try (RangeReader reader = RangeReader.open(blob)) {
                    EStargzBlob opened = EStargzBlob.open(reader, toc.group(1));
                    try (LayerMount m = LayerMount.mount(opened.index(), opened::readChunk, dir.resolve("mnt-" + name), name)) {
                        String mounted = TreeDescription.of(m.mountPoint(), true);
                        // The reference vectors carry xattrs without a namespace ("foo", "binary"), which the
                        // mount shows as the TOC has them but GNU tar cannot set on a real file.
                        String noNamespace = " xattrs={binary=fffefd, foo=626172}";
                        if (mounted.contains("xattr/file ")) {
                            assertTrue(mounted.contains(noNamespace), name + ": TOC xattrs shown as they are");
                        }
                        assertEquals(TreeDescription.of(extracted, true), mounted.replace(noNamespace, ""), name);
                    }
                }
                layers++;
            }
        }
        assertEquals(7, layers, "every vector layer was mounted");
    }

    /**
     * What the mount shows for a layer's whiteout files (compat doc section 1.13), applied to an
     * extracted tree: {@code .wh.X} becomes X, a 0:0 character device with mtime 0, and
     * {@code .wh..wh..opq} becomes the directory's {@code overlay.opaque} xattr.
     */
    private static void toOverlayForm(Path root) throws Exception {
        List<Path> markers;
        try (var walk = Files.walk(root)) {
            markers = walk.filter(p -> p.getFileName().toString().startsWith(".wh.")).toList();
        }
        for (Path marker : markers) {
            Path parent = marker.getParent();
            var parentTime = Files.getLastModifiedTime(parent);
            String name = marker.getFileName().toString();
            Files.delete(marker);
            if (name.equals(".wh..wh..opq")) {
                Processes.run(parent, "setfattr", "-n", "user.overlay.opaque", "-v", "y", ".");
            } else {
                String hidden = name.substring(".wh.".length());
                Processes.run(parent, "mknod", "-m", "000", hidden, "c", "0", "0");
                Processes.run(parent, "touch", "-h", "-d", "@0", hidden);
            }
            Files.setLastModifiedTime(parent, parentTime);
        }
    }

    private String resource(String name) throws IOException {
        try (var in = getClass().getClassLoader().getResourceAsStream(name)) {
            if (in == null) {
                throw new IOException(name + " is not on the class path (the estargz test-jar)");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The state file is reachable by name, hidden from listings, and read afresh each time (no stale page cache). */
    @Test
    void stateFileIsHiddenAndAlwaysCurrent() throws Exception {
        OneFileLayer layer = oneFileLayer("state", "hello", "hello\n");
        java.util.concurrent.atomic.AtomicInteger reads = new java.util.concurrent.atomic.AtomicInteger();
        try (RangeReader reader = RangeReader.open(layer.blob())) {
            EStargzBlob opened = EStargzBlob.open(reader, layer.tocDigest());
            StateFile state = new StateFile("sha256:abc.json",
                    () -> ("{\"reads\":" + reads.get() + "}\n").getBytes(StandardCharsets.UTF_8));
            try (LayerMount m = LayerMount.mount(opened.index(), chunk -> {
                reads.incrementAndGet();
                return opened.readChunk(chunk);
            }, dir.resolve("mnt-state"), "state", state, MountOptions.DEFAULTS)) {
                Path mnt = m.mountPoint();
                Path file = mnt.resolve(".stargz-snapshotter/sha256:abc.json");
                assertEquals("{\"reads\":0}\n", Files.readString(file));
                assertEquals("hello\n", Files.readString(mnt.resolve("hello")));
                assertEquals("{\"reads\":1}\n", Files.readString(file), "the second read shows the new state");
                assertEquals(List.of("hello"), names(mnt), "the state directory is not listed");
                assertEquals(List.of("sha256:abc.json"), names(mnt.resolve(".stargz-snapshotter")));
                assertEquals("dr-x------ 0:0", Processes.run(mnt, "stat", "-c", "%A %u:%g", ".stargz-snapshotter").strip());
            }
        }
    }

    /**
     * The kernel keeps a layer's lookups for the mount's life, absent names too: a new layer mounted
     * at the same place shows its own tree, never what the kernel cached of the old one.
     */
    @Test
    void cachedLookupsNeverOutliveTheirMount() throws Exception {
        OneFileLayer first = oneFileLayer("first", "config", "first version\n");
        Path tree = Files.createDirectories(dir.resolve("second-tree"));
        Files.writeString(tree.resolve("config"), "the second, longer version\n");
        Files.writeString(tree.resolve("added"), "new\n");
        Path secondBlob = dir.resolve("second.esgz");
        String secondToc = Converter.convert(tar(tree, "second.tar"), secondBlob, ConvertOptions.defaults()).tocDigest();
        Path mnt = dir.resolve("mnt-same");
        try (RangeReader reader = RangeReader.open(first.blob())) {
            EStargzBlob opened = EStargzBlob.open(reader, first.tocDigest());
            try (LayerMount m = LayerMount.mount(opened.index(), opened::readChunk, mnt, "first")) {
                assertEquals("first version\n", Files.readString(mnt.resolve("config")));
                assertEquals(14, Files.size(mnt.resolve("config")));
                assertFalse(Files.exists(mnt.resolve("added")), "not in the first layer (and now a cached negative lookup)");
                assertFalse(Files.exists(mnt.resolve("added")));
            }
        }
        try (RangeReader reader = RangeReader.open(secondBlob)) {
            EStargzBlob opened = EStargzBlob.open(reader, secondToc);
            try (LayerMount m = LayerMount.mount(opened.index(), opened::readChunk, mnt, "second")) {
                assertEquals("new\n", Files.readString(mnt.resolve("added")), "the name the first mount had not");
                assertEquals(27, Files.size(mnt.resolve("config")), "the second layer's size, not the cached one");
                assertEquals("the second, longer version\n", Files.readString(mnt.resolve("config")));
                assertEquals(List.of("added", "config"), names(mnt));
            }
        }
    }

    /** Read-ahead earns its bytes: it starts small and grows while the reader stays sequential. */
    @Test
    void readAheadStartsSmallAndGrowsWhileTheReaderStaysSequential() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("ra-tree"));
        byte[] model = new byte[64 << 20];
        new Random(9).nextBytes(model);
        Files.write(tree.resolve("model.bin"), model);
        Path blob = dir.resolve("ra.esgz");
        ConvertResult r = Converter.convert(tar(tree, "ra.tar"), blob, ConvertOptions.defaults().withChunkSize(1 << 20));
        try (RangeReader reader = RangeReader.open(blob)) {
            EStargzBlob opened = EStargzBlob.open(reader, r.tocDigest());
            java.util.concurrent.atomic.AtomicLong askedUntil = new java.util.concurrent.atomic.AtomicLong();
            dev.starling.estargz.ChunkSource source = new dev.starling.estargz.ChunkSource() {
                @Override
                public byte[] read(dev.starling.estargz.Chunk chunk) throws IOException {
                    return opened.readChunk(chunk);
                }

                @Override
                public void readAhead(List<dev.starling.estargz.Chunk> upcoming) {
                    upcoming.forEach(c -> askedUntil.accumulateAndGet(c.fileOffset() + c.size(), Math::max));
                }
            };
            // no kernel readahead: the file system sees the reader's own 128 KiB reads
            MountOptions options = new MountOptions(32L << 20, 64, 16, 0, 8, false);
            try (LayerMount m = LayerMount.mount(opened.index(), source, dir.resolve("mnt-grow"), "grow", null, options);
                 java.nio.channels.FileChannel in = java.nio.channels.FileChannel.open(m.mountPoint().resolve("model.bin"))) {
                java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(128 << 10);
                long pos = 0;
                while (pos < (4 << 20)) {
                    buf.clear();
                    pos += in.read(buf, pos);
                    assertEquals(java.nio.ByteBuffer.wrap(model, (int) pos - buf.position(), buf.position()), buf.flip());
                }
                assertTrue(askedUntil.get() > 4 << 20 && askedUntil.get() <= 12 << 20,
                        "after 4 MiB read, chunks up to " + (askedUntil.get() >> 20) + " MiB were asked for, not 36");
                while (pos < (40 << 20)) {
                    buf.clear();
                    pos += in.read(buf, pos);
                }
                assertTrue(askedUntil.get() >= 56 << 20, "a reader that goes on has the full 32 MiB window: "
                        + (askedUntil.get() >> 20) + " MiB asked for at 40 MiB read");
                in.position(0); // random access: the right bytes, whatever was asked ahead
                for (int offset : new int[] {50 << 20, 3 << 20, 63 << 20, 17 << 20}) {
                    buf.clear();
                    int n = in.read(buf, offset);
                    assertEquals(java.nio.ByteBuffer.wrap(model, offset, n), buf.flip(), "bytes at " + offset);
                }
            }
        }
    }

    /** The kernel's page-cache readahead for the mount is raised from its 128 KiB default. */
    @Test
    void kernelReadAheadIsRaised() throws Exception {
        OneFileLayer layer = oneFileLayer("ra", "f", "f");
        try (RangeReader reader = RangeReader.open(layer.blob())) {
            EStargzBlob opened = EStargzBlob.open(reader, layer.tocDigest());
            try (LayerMount m = LayerMount.mount(opened.index(), opened::readChunk, dir.resolve("mnt-ra"), "ra", null,
                    MountOptions.DEFAULTS)) {
                String device = MountTable.at(m.mountPoint()).orElseThrow().device();
                assertEquals(String.valueOf(MountOptions.DEFAULTS.kernelReadAheadBytes() >> 10),
                        Files.readString(Path.of("/sys/class/bdi", device, "read_ahead_kb")).strip());
            }
        }
    }

    @Test
    void whiteoutsAndOpaqueDirectoriesWorkThroughARealOverlay() throws Exception {
        Path lower = Files.createDirectories(dir.resolve("lower"));
        for (String d : List.of("a", "b", "c")) {
            Files.createDirectories(lower.resolve(d));
        }
        Files.writeString(lower.resolve("a/x"), "x");
        Files.writeString(lower.resolve("a/keep"), "keep");
        Files.writeString(lower.resolve("b/y"), "y");
        Files.writeString(lower.resolve("c/z"), "z");
        Path upper = Files.createDirectories(dir.resolve("upper"));
        Files.createDirectories(upper.resolve("a"));
        Files.createDirectories(upper.resolve("b"));
        Files.writeString(upper.resolve("a/.wh.x"), "");
        Files.writeString(upper.resolve("b/.wh..wh..opq"), "");
        Files.writeString(upper.resolve("b/new"), "new");
        try (Mounted l1 = mount(tar(lower, "lower.tar"), "lower"); Mounted l2 = mount(tar(upper, "upper.tar"), "upper")) {
            Path up = l2.mount().mountPoint();
            assertEquals("character special file 0:0", Processes.run(up, "stat", "-c", "%F %t:%T", "a/x").strip(),
                    "a whiteout shows as a 0:0 character device");
            assertFalse(Files.exists(up.resolve("a/.wh.x")), ".wh. names are hidden");
            assertEquals("y", Processes.run(up, "getfattr", "--only-values", "-n", "trusted.overlay.opaque", "b").strip());
            assertEquals("y", Processes.run(up, "getfattr", "--only-values", "-n", "user.overlay.opaque", "b").strip());
            Path merged = Files.createDirectories(dir.resolve("merged"));
            Processes.run(dir, "mount", "-t", "overlay", "overlay", "-o",
                    "ro,lowerdir=" + up + ":" + l1.mount().mountPoint(), merged.toString());
            try {
                assertFalse(Files.exists(merged.resolve("a/x")), "whiteout hides a/x");
                assertEquals("keep", Files.readString(merged.resolve("a/keep")));
                assertEquals(List.of("new"), names(merged.resolve("b")),
                        "opaque b hides the lower b");
                assertEquals("z", Files.readString(merged.resolve("c/z")));
            } finally {
                Processes.run(dir, "umount", merged.toString());
            }
        }
    }

    private record OneFileLayer(Path blob, String tocDigest) {
    }

    /** An eStargz blob of a one-file tree, converted with the defaults. */
    private OneFileLayer oneFileLayer(String name, String file, String content) throws Exception {
        Path tree = Files.createDirectories(dir.resolve(name + "-tree"));
        Files.writeString(tree.resolve(file), content);
        Path blob = dir.resolve(name + ".esgz");
        return new OneFileLayer(blob, Converter.convert(tar(tree, name + ".tar"), blob, ConvertOptions.defaults()).tocDigest());
    }

    static List<String> names(Path directory) throws IOException {
        try (var entries = Files.list(directory)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void staleMountOfAKilledDaemonIsClearedBeforeMounting() throws Exception {
        OneFileLayer layer = oneFileLayer("small", "f", "fresh");
        Path mnt = dir.resolve("stale");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process daemon = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), MountMain.class.getName(), layer.blob().toString(), layer.tocDigest(),
                mnt.toString()).redirectErrorStream(true).start();
        try {
            String line = new java.io.BufferedReader(new java.io.InputStreamReader(daemon.getInputStream())).readLine();
            assertEquals("mounted", line);
            assertEquals("fresh", Files.readString(mnt.resolve("f")));
            Files.readAttributes(mnt, "unix:ino"); // the root's attributes now cached by the kernel, for a day
        } finally {
            daemon.destroyForcibly().waitFor(10, TimeUnit.SECONDS); // kill -9: the mount stays behind, dead
        }
        assertTrue(MountTable.isDead(mnt), "dead, though a stat of it is still answered from the kernel's cache");
        try (RangeReader reader = RangeReader.open(layer.blob())) {
            EStargzBlob opened = EStargzBlob.open(reader, layer.tocDigest());
            try (LayerMount again = LayerMount.mount(opened.index(), opened::readChunk, mnt, "again")) {
                assertEquals("fresh", Files.readString(mnt.resolve("f")));
            }
        }
    }
}
