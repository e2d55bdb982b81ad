package dev.starling.estargz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Convert, then read back: for tars written by GNU tar (gnu, posix, ustar), Python's tarfile (PAX,
 * GNU) and umoci, every file GNU tar extracts from the input must be in our index with the same
 * type, mode, owner, size, time, link target, xattrs and bytes (read chunk by chunk through our
 * reader), hardlinks must share a node, and GNU tar must extract our output to the same tree.
 */
class RoundTripTest {
    @TempDir
    static Path work;
    static Path tree;

    @BeforeAll
    static void makeTree() throws Exception {
        tree = Files.createDirectories(work.resolve("tree"));
        Files.createDirectories(tree.resolve("etc/conf.d"));
        Files.writeString(tree.resolve("etc/hostname"), "starling\n");
        Files.writeString(tree.resolve("etc/empty"), "");
        Files.write(tree.resolve("big.bin"), Layers.random(11, 5 * 1024 * 1024 + 123));
        Files.write(tree.resolve("zeros.bin"), new byte[3 * 1024 * 1024]);
        Files.createDirectories(tree.resolve("bin"));
        Files.write(tree.resolve("bin/tool"), Layers.random(12, 70_000));
        Files.createLink(tree.resolve("bin/tool-hardlink"), tree.resolve("bin/tool"));
        Files.createSymbolicLink(tree.resolve("bin/sym"), Path.of("tool"));
        Files.createSymbolicLink(tree.resolve("dangling"), Path.of("../nowhere/at/all"));
        String longDir = "l".repeat(70) + "/" + "m".repeat(70); // > 100 chars, still splittable for ustar
        Files.createDirectories(tree.resolve(longDir));
        Files.writeString(tree.resolve(longDir + "/" + "n".repeat(60)), "long path\n");
        Files.createDirectories(tree.resolve("unicodé"));
        Files.writeString(tree.resolve("unicodé/naïve.txt"), "ünïcödé\n");
        Files.createDirectories(tree.resolve("tmp"));
        for (int i = 0; i < 30; i++) {
            Files.writeString(tree.resolve("etc/conf.d/file" + i), "setting=" + i + "\n".repeat(i));
        }
        Processes.run(tree, "mkfifo", "fifo");
        Processes.run(tree, "mknod", "null", "c", "1", "3");
        Processes.run(tree, "chmod", "1777", "tmp");
        Processes.run(tree, "chmod", "4755", "bin/tool");
        Processes.run(tree, "chmod", "2750", "etc/conf.d");
        Processes.run(tree, "chown", "-h", "1234:5678", "etc/hostname", "bin/sym");
        Processes.run(tree, "setfattr", "-n", "user.starling", "-v", "0xfffe00", "etc/hostname");
        Processes.run(tree, "touch", "-h", "-d", "2021-02-03 04:05:06Z", "dangling");
    }

    static Stream<Arguments> producers() {
        List<Arguments> out = new ArrayList<>();
        for (String producer : List.of("gnu-tar-gnu", "gnu-tar-posix", "gnu-tar-ustar", "python-pax", "python-gnu",
                "umoci")) {
            out.add(Arguments.of(producer, false));
            out.add(Arguments.of(producer, true));
        }
        return out.stream();
    }

    /** Writes the input layer with the named producer; returns it (a tar, or umoci's tar.gz). */
    static Path produce(String producer) throws Exception {
        Path out = work.resolve(producer + ".layer");
        if (Files.exists(out)) {
            return out;
        }
        switch (producer) {
            case "gnu-tar-gnu", "gnu-tar-posix", "gnu-tar-ustar" -> {
                String format = producer.substring("gnu-tar-".length());
                List<String> cmd = new ArrayList<>(List.of("tar", "--format=" + format, "--numeric-owner",
                        "--sort=name", "-cf", out.toString()));
                if (format.equals("posix")) {
                    cmd.addAll(List.of("--xattrs", "--xattrs-include=user.*"));
                }
                cmd.add(".");
                Processes.run(tree, cmd.toArray(String[]::new));
            }
            case "python-pax", "python-gnu" -> Processes.run(tree, "python3", "-c", """
                    import os, sys, tarfile
                    fmt = tarfile.PAX_FORMAT if sys.argv[2] == 'pax' else tarfile.GNU_FORMAT
                    with tarfile.open(sys.argv[1], 'w', format=fmt) as t:
                        for root, dirs, files in os.walk('.'):
                            dirs.sort()
                            for name in sorted(dirs) + sorted(files):
                                t.add(os.path.join(root, name), recursive=False)
                    """, out.toString(), producer.substring("python-".length()));
            case "umoci" -> {
                Path layout = work.resolve("umoci-layout");
                Path bundle = work.resolve("umoci-bundle");
                Processes.run(work, "umoci", "init", "--layout", layout.toString());
                Processes.run(work, "umoci", "new", "--image", layout + ":t");
                Processes.run(work, "umoci", "unpack", "--image", layout + ":t", bundle.toString());
                Processes.run(work, "cp", "-a", tree + "/.", bundle.resolve("rootfs").toString());
                Processes.run(work, "umoci", "repack", "--image", layout + ":t", bundle.toString());
                String layer = Processes.run(work, "python3", "-c", """
                        import json, sys
                        d = sys.argv[1]
                        idx = json.load(open(d + '/index.json'))
                        m = json.load(open(d + '/blobs/' + idx['manifests'][0]['digest'].replace(':', '/')))
                        print(d + '/blobs/' + m['layers'][-1]['digest'].replace(':', '/'))
                        """, layout.toString()).strip();
                Files.copy(Path.of(layer), out);
            }
            default -> throw new IllegalArgumentException(producer);
        }
        return out;
    }

    @ParameterizedTest(name = "{0} lossless={1}")
    @MethodSource("producers")
    void convertThenReadBackEqualsTheInput(String producer, boolean lossless) throws Exception {
        Path input = produce(producer);
        Path blobFile = work.resolve(producer + "-" + lossless + ".esgz");
        ConvertResult result = Converter.convert(input, blobFile,
                ConvertOptions.defaults().withChunkSize(1 << 20).withLossless(lossless));
        Path expected = extract(input, producer + "-in-" + lossless);
        try (RangeReader reader = RangeReader.open(blobFile)) {
            EStargzBlob blob = EStargzBlob.open(reader, result.tocDigest());
            Map<Object, TocNode> byInode = new HashMap<>();
            for (Path p : walk(expected)) {
                String rel = expected.relativize(p).toString();
                TocNode node = blob.index().lookup(rel);
                assertNotNull(node, producer + ": " + rel + " missing from the index");
                assertSameFile(blob, p, node, rel);
                Object inode = Files.getAttribute(p, "unix:ino", LinkOption.NOFOLLOW_LINKS);
                TocNode earlier = byInode.putIfAbsent(node.type() == EntryType.DIR ? rel : inode, node);
                if (earlier != null && node.type() != EntryType.DIR) {
                    assertSame(earlier, node, rel + ": hardlinks share one node");
                }
            }
            long distinct = byInode.values().stream().distinct().count();
            assertEquals(distinct + 1 + (lossless ? 0 : 1), blob.index().nodeCount(),
                    "no extra nodes: root, the input's files" + (lossless ? "" : " and the landmark"));
            assertTrue(BlobVerifier.verify(blob).ok());
        }
        Path ours = extract(blobFile, producer + "-out-" + lossless);
        Files.deleteIfExists(ours.resolve(EStargzBlob.TOC_NAME));
        Files.deleteIfExists(ours.resolve(TocIndex.NO_PREFETCH_LANDMARK));
        assertEquals(describeTree(expected), describeTree(ours), "GNU tar extracts our blob to the input's tree");
    }

    private static void assertSameFile(EStargzBlob blob, Path p, TocNode node, String rel) throws IOException {
        Map<String, Object> a = Files.readAttributes(p, "unix:mode,uid,gid,size,lastModifiedTime,rdev",
                LinkOption.NOFOLLOW_LINKS);
        int mode = (int) a.get("mode");
        EntryType type = switch (mode & 0170000) {
            case 0040000 -> EntryType.DIR;
            case 0100000 -> EntryType.REG;
            case 0120000 -> EntryType.SYMLINK;
            case 0020000 -> EntryType.CHAR;
            case 0060000 -> EntryType.BLOCK;
            case 0010000 -> EntryType.FIFO;
            default -> throw new AssertionError(rel + ": unexpected mode " + Integer.toOctalString(mode));
        };
        assertEquals(type, node.type(), rel);
        if (type != EntryType.SYMLINK) {
            assertEquals(Integer.toOctalString(mode & 07777), Integer.toOctalString(node.mode()), rel + " mode");
        }
        assertEquals(a.get("uid"), node.uid(), rel + " uid");
        assertEquals(a.get("gid"), node.gid(), rel + " gid");
        long mtime = ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime")).toMillis() / 1000;
        if (type != EntryType.DIR) { // extraction touches directory times as it fills them
            assertEquals(mtime, node.modTime(), rel + " mtime");
        }
        switch (type) {
            case REG -> {
                assertEquals(a.get("size"), node.size(), rel + " size");
                assertArrayEquals(Files.readAllBytes(p), blob.read(node, 0, (int) node.size()), rel + " content");
            }
            case SYMLINK -> assertEquals(Files.readSymbolicLink(p).toString(), node.linkTarget(), rel);
            case CHAR, BLOCK -> {
                long rdev = (long) a.get("rdev");
                assertEquals((rdev >> 8) & 0xfff, node.devMajor(), rel + " major");
                assertEquals((rdev & 0xff) | ((rdev >> 12) & 0xfff00), node.devMinor(), rel + " minor");
            }
            default -> {
            }
        }
        if (type == EntryType.REG || type == EntryType.DIR) {
            Map<String, byte[]> xattrs = new TreeMap<>();
            UserDefinedFileAttributeView view = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class);
            for (String name : view.list()) {
                ByteBuffer buf = ByteBuffer.allocate(view.size(name));
                view.read(name, buf);
                xattrs.put("user." + name, buf.array());
            }
            Map<String, byte[]> ours = new TreeMap<>(node.xattrs());
            assertEquals(xattrs.keySet(), ours.keySet(), rel + " xattrs");
            xattrs.forEach((k, v) -> assertArrayEquals(v, ours.get(k), rel + " xattr " + k));
        }
    }

    static Path extract(Path archive, String name) throws Exception {
        Path dir = Files.createDirectories(work.resolve("x-" + name));
        Processes.run(dir, "tar", "--xattrs", "--xattrs-include=user.*", "--numeric-owner", "--same-owner", "-xpf",
                archive.toString());
        return dir;
    }

    static List<Path> walk(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(p -> !p.equals(root)).sorted().toList();
        }
    }

    /** One line per path: type+mode, owner, size, mtime (non-dirs), link target, content hash. */
    static String describeTree(Path root) throws IOException {
        StringBuilder b = new StringBuilder();
        for (Path p : walk(root)) {
            Map<String, Object> a = Files.readAttributes(p, "unix:mode,uid,gid,size,lastModifiedTime",
                    LinkOption.NOFOLLOW_LINKS);
            int mode = (int) a.get("mode");
            b.append(root.relativize(p)).append(' ').append(Integer.toOctalString(mode)).append(' ')
                    .append(a.get("uid")).append(':').append(a.get("gid"));
            if ((mode & 0170000) != 0040000) {
                b.append(' ').append(a.get("size")).append(' ').append(a.get("lastModifiedTime"));
            }
            if (Files.isSymbolicLink(p)) {
                b.append(" -> ").append(Files.readSymbolicLink(p));
            } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                byte[] data = Files.readAllBytes(p);
                b.append(' ').append(Digests.format(Digests.sha256(data, 0, data.length)));
            }
            b.append('\n');
        }
        return b.toString();
    }
}
