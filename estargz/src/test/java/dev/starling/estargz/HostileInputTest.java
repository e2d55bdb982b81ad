package dev.starling.estargz;

import static dev.starling.estargz.Layers.layer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.starling.estargz.tar.TarFormatException;
import dev.starling.estargz.tar.TarHeader;
import dev.starling.estargz.write.ConvertOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Malformed and hostile blobs, TOCs and tars: a clear error, never a crash, a hang or wrong bytes. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HostileInputTest {
    private static Layers.Converted sample;

    @BeforeAll
    static void convertSample() throws Exception {
        sample = layer().dir("etc").file("etc/passwd", "root:x:0:0\n").file("big", Layers.random(3, 20_000))
                .symlink("link", "etc/passwd").hardlink("hard", "etc/passwd")
                .convert(ConvertOptions.defaults().withChunkSize(4096));
    }

    /** Opens and reads everything; only I/O-style failures are acceptable. */
    private static void openAndReadAll(byte[] blob, String tocDigest) {
        try {
            EStargzBlob b = EStargzBlob.open(RangeReader.of(blob), tocDigest);
            BlobVerifier.verify(b);
        } catch (IOException expected) {
            assertNotNull(expected.getMessage());
        } catch (RuntimeException | Error e) {
            throw new AssertionError("crashed instead of reporting an error: " + e, e);
        }
    }

    @Test
    void everyTruncationIsAnErrorNotACrash() {
        byte[] blob = sample.blob();
        for (int length = 0; length < blob.length; length++) {
            byte[] cut = Arrays.copyOf(blob, length);
            assertThrows(IOException.class, () -> EStargzBlob.open(RangeReader.of(cut), null), "length " + length);
        }
    }

    @Test
    void randomCorruptionNeverCrashesAndNeverYieldsUnverifiedBytes() throws Exception {
        Random random = new Random(42);
        byte[] original = sample.blob();
        for (int i = 0; i < 2000; i++) {
            byte[] blob = original.clone();
            int flips = 1 + random.nextInt(4);
            for (int f = 0; f < flips; f++) {
                blob[random.nextInt(blob.length)] ^= (byte) (1 + random.nextInt(255));
            }
            openAndReadAll(blob, i % 2 == 0 ? sample.result().tocDigest() : null);
        }
    }

    @Test
    void corruptedPayloadWithTheRightTocGivesEioNotWrongBytes() throws Exception {
        Random random = new Random(7);
        EStargzBlob good = sample.open();
        TocNode big = good.index().lookup("big");
        byte[] expected = good.read(big, 0, (int) big.size());
        long payloadEnd = good.index().payloadEnd();
        for (int i = 0; i < 300; i++) {
            byte[] blob = sample.blob().clone();
            blob[random.nextInt((int) payloadEnd)] ^= (byte) (1 + random.nextInt(255));
            EStargzBlob b = EStargzBlob.open(RangeReader.of(blob), sample.result().tocDigest());
            TocNode f = b.index().lookup("big");
            for (int c = 0; c < f.chunkCount(); c++) {
                Chunk chunk = b.index().chunk(f, c);
                try {
                    byte[] data = b.readChunk(chunk);
                    assertTrue(Arrays.equals(expected, (int) chunk.fileOffset(), (int) (chunk.fileOffset() + data.length),
                            data, 0, data.length), "a chunk that passed verification has the right bytes");
                } catch (InvalidBlobException e) {
                    assertTrue(e.getMessage().contains("\"big\""), e.getMessage());
                }
            }
        }
    }

    private static InvalidBlobException rejectToc(String json) {
        return assertThrows(InvalidBlobException.class,
                () -> Layers.withTocJson(sample, json.getBytes(StandardCharsets.UTF_8)).open());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "not json at all|not valid JSON",
            "[1, 2, 3]|expected",
            "{\"version\": 1, \"entries\": [{\"type\": \"reg\"}]}|has no name",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\"}]}|has no type",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"socket\"}]}|unknown entry type",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": -1}]}|negative",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 99999999999999999999999}]}|out of range",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 1.5}]}|not an integer",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 1099511627776, \"offset\": 10, \"digest\": \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}]}|outside 1..",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 5, \"offset\": 99999999}]}|past the TOC",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 5, \"offset\": 10, \"chunkDigest\": \"md5:abc\"}]}|not a sha256 digest",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"chunk\", \"offset\": 10}]}|does not follow",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"hardlink\", \"linkName\": \"b\"}, {\"name\": \"b\", \"type\": \"hardlink\", \"linkName\": \"a\"}]}|hardlink loop",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"hardlink\", \"linkName\": \"missing\"}]}|not in the layer",
            "{\"version\": 1, \"entries\": [{\"name\": \"d/\", \"type\": \"dir\"}, {\"name\": \"a\", \"type\": \"hardlink\", \"linkName\": \"d\"}]}|a directory",
            "{\"version\": 1, \"entries\": [{\"name\": \"f\", \"type\": \"symlink\", \"linkName\": \"/\"}, {\"name\": \"f/x\", \"type\": \"reg\"}]}|not a directory",
            "{\"version\": 1, \"entries\": [{\"name\": \"./\", \"type\": \"reg\"}]}|names the root",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\\u0000b\", \"type\": \"reg\"}]}|NUL",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"modtime\": \"yesterday\"}]}|RFC 3339",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"xattrs\": {\"k\": \"***\"}}]}|base64",
            "{\"version\": 1, \"entries\": [[[[[[[[[[[[1]]]]]]]]]]]]}|expected",
            "{\"version\": 1, \"entries\": []} trailing|trailing",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 8, \"offset\": 10, \"chunkSize\": 4}, {\"name\": \"a\", \"type\": \"chunk\", \"offset\": 20, \"chunkOffset\": 5}]}|should start at",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 8, \"offset\": 10, \"chunkSize\": 4}]}|cover 4 bytes",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 4, \"offset\": 20}, {\"name\": \"b\", \"type\": \"reg\", \"size\": 4, \"offset\": 10}]}|goes back",
            "{\"version\": 1, \"entries\": [{\"name\": \"a\", \"type\": \"reg\", \"size\": 4, \"offset\": 10, \"innerOffset\": 999999999999}]}|member limit",
    })
    void hostileTocIsRejectedWithAClearMessage(String json, String expectedMessage) {
        InvalidBlobException e = rejectToc(json);
        assertTrue(e.getMessage().contains(expectedMessage), "message: " + e.getMessage());
    }

    @Test
    void dotDotNamesStayInsideTheLayer() throws Exception {
        Layers.Converted c = layer().file("../../etc/shadow", "x").file("/abs/../../y", "y").file("a//b/./c/", "z")
                .convert(ConvertOptions.defaults());
        EStargzBlob blob = c.open();
        assertNotNull(blob.index().lookup("etc/shadow"));
        assertNotNull(blob.index().lookup("y"));
        assertNotNull(blob.index().lookup("a/b/c"));
        assertNull(blob.index().root().child(".."));
        assertEquals("etc/shadow", blob.index().lookup("../etc/shadow").path());
    }

    @Test
    void hugeTocSizeInTheFooterIsRefusedBeforeReading() {
        byte[] blob = new byte[200];
        System.arraycopy(Footer.estargz(0), 0, blob, 149, 51);
        ReaderLimits tight = new ReaderLimits(100, 1 << 20, 1 << 20);
        InvalidBlobException e = assertThrows(InvalidBlobException.class,
                () -> EStargzBlob.open(RangeReader.of(blob), null, tight));
        assertTrue(e.getMessage().contains("limit"), e.getMessage());
    }

    @Test
    void zipBombTocIsCutOff() throws Exception {
        byte[] zeros = new byte[4 << 20];
        var out = new java.io.ByteArrayOutputStream();
        try (var gz = new java.util.zip.GZIPOutputStream(out)) {
            gz.write(TarHeader.regularFile(EStargzBlob.TOC_NAME, zeros.length).encode());
            gz.write(zeros);
        }
        out.write(Footer.estargz(0));
        ReaderLimits tight = new ReaderLimits(1 << 20, 1 << 20, 1 << 20);
        InvalidBlobException e = assertThrows(InvalidBlobException.class,
                () -> EStargzBlob.open(RangeReader.of(out.toByteArray()), null, tight));
        assertTrue(e.getMessage().contains("more than"), e.getMessage());
    }

    @Test
    void tocMemberMustHoldTheIndexFile() throws Exception {
        var out = new java.io.ByteArrayOutputStream();
        try (var gz = new java.util.zip.GZIPOutputStream(out)) {
            gz.write(TarHeader.regularFile("etc/passwd", 2).encode());
            gz.write(new byte[512 + 1024]);
        }
        out.write(Footer.estargz(0));
        InvalidBlobException e = assertThrows(InvalidBlobException.class,
                () -> EStargzBlob.open(RangeReader.of(out.toByteArray()), null));
        assertTrue(e.getMessage().contains("not stargz.index.json"), e.getMessage());
    }

    @Test
    void hostileTarInputsAreRefusedByName() throws Exception {
        byte[] good = layer().file("a", "hello").tar();
        byte[] truncated = Arrays.copyOf(good, 700);
        assertTarRejected(truncated, "truncated");
        byte[] badChecksum = good.clone();
        badChecksum[0] = 'b';
        assertTarRejected(badChecksum, "checksum");
        TarHeader global = new TarHeader();
        global.name = "pax_global_header";
        global.type = 'g';
        byte[] g = global.encode();
        assertTarRejected(concat(g, good), "global PAX");
        assertTarRejected("this is not a tar file at all, just text that is long enough to need a header.".repeat(10)
                .getBytes(), "not a tar archive");
    }

    @Test
    void outputIsNotLeftBehindWhenConversionFails() throws Exception {
        var dir = java.nio.file.Files.createTempDirectory("starling-fail-");
        var in = dir.resolve("in.tar");
        java.nio.file.Files.write(in, Arrays.copyOf(layer().file("a", "hello").tar(), 700));
        var out = dir.resolve("out.esgz");
        assertThrows(TarFormatException.class,
                () -> dev.starling.estargz.write.Converter.convert(in, out, ConvertOptions.defaults()));
        try (var files = java.nio.file.Files.list(dir)) {
            assertEquals(java.util.List.of(in), files.toList(), "only the input remains");
        }
    }

    private static void assertTarRejected(byte[] tar, String message) {
        try {
            Layers.convert(tar, ConvertOptions.defaults());
            fail("accepted a bad tar");
        } catch (TarFormatException e) {
            assertTrue(e.getMessage().contains(message), e.getMessage());
        } catch (IOException e) {
            fail("wrong error type: " + e);
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static TocEntry firstDir(List<TocEntry> entries) {
        return entries.stream().filter(e -> e.type() == EntryType.DIR).findFirst().orElseThrow();
    }

    /** A TOC of {@code count} copies of one entry, gzip'd as a blob's only member: small compressed, huge inflated. */
    private static byte[] tocBomb(String entryJson, int count) throws IOException {
        var out = new java.io.ByteArrayOutputStream();
        byte[] head = "{\"version\":1,\"entries\":[".getBytes(StandardCharsets.UTF_8);
        byte[] entry = (entryJson + ",").getBytes(StandardCharsets.UTF_8);
        byte[] last = (entryJson + "]}").getBytes(StandardCharsets.UTF_8);
        long size = head.length + (long) entry.length * (count - 1) + last.length;
        try (var gz = new java.util.zip.GZIPOutputStream(out, 1 << 16)) {
            gz.write(TarHeader.regularFile(EStargzBlob.TOC_NAME, size).encode());
            gz.write(head);
            byte[] block = new byte[entry.length * 4096];
            for (int k = 0; k < 4096; k++) {
                System.arraycopy(entry, 0, block, k * entry.length, entry.length);
            }
            int left = count - 1;
            for (; left >= 4096; left -= 4096) {
                gz.write(block);
            }
            for (; left > 0; left--) {
                gz.write(entry);
            }
            gz.write(last);
            gz.write(new byte[(int) ((512 - size % 512) % 512) + 1024]);
        }
        out.write(Footer.estargz(0));
        return out.toByteArray();
    }

    @Test
    void aTocThatInflatesToHundredsOfMegabytesIsRefusedByItsEntryCountWithoutHoldingIt() throws Exception {
        // 1.3 MB that inflate to ~500 MiB: the JSON is hashed and parsed as it inflates, never held, and
        // the entry count (what the index costs in heap) stops it.
        byte[] blob = tocBomb("{\"name\":\"d\",\"type\":\"dir\",\"mode\":493,\"uid\":0,\"gid\":0,\"userName\":\"root\",\"groupName\":\"root\"}", 5_000_000);
        assertTrue(blob.length < 2_000_000, "compressed " + blob.length);
        Runtime rt = Runtime.getRuntime();
        System.gc();
        long before = rt.totalMemory() - rt.freeMemory();
        EStargzBlob.RawToc raw = EStargzBlob.readToc(RangeReader.of(blob), ReaderLimits.DEFAULT);
        long afterHash = rt.totalMemory() - rt.freeMemory();
        assertTrue(afterHash - before < 64L << 20, "hashing a 500 MiB TOC held " + ((afterHash - before) >> 20) + " MiB");
        InvalidBlobException e = assertThrows(InvalidBlobException.class,
                () -> EStargzBlob.open(RangeReader.of(blob), raw, raw.digest(), ReaderLimits.DEFAULT));
        assertTrue(e.getMessage().contains("more than 2000000 entries"), e.getMessage());
    }

    @Test
    void aTreeDeeperThanAPathCanReachIsRefusedAndPathsAreBuiltWithoutRecursion() throws Exception {
        Layers.Converted deep = Layers.rewriteToc(sample, entries -> {
            List<TocEntry> out = new java.util.ArrayList<>(entries);
            out.add(Layers.withField(firstDir(entries), java.util.Map.of("name", "a/".repeat(3000) + "f")));
            return out;
        });
        InvalidBlobException e = assertThrows(InvalidBlobException.class, deep::open);
        assertTrue(e.getMessage().contains("more than 2048 directories deep"), e.getMessage());
        Layers.Converted ok = Layers.rewriteToc(sample, entries -> {
            List<TocEntry> out = new java.util.ArrayList<>(entries);
            out.add(Layers.withField(firstDir(entries), java.util.Map.of("name", "a/".repeat(2000) + "f")));
            return out;
        });
        TocNode leaf = ok.open().index().lookup("a/".repeat(2000) + "f");
        assertEquals("a/".repeat(2000) + "f", leaf.path());
        ReaderLimits deeper = new ReaderLimits(512L << 20, 64 << 20, 256 << 20, 2_000_000, 500_000);
        Layers.Converted veryDeep = Layers.rewriteToc(sample, entries -> {
            List<TocEntry> out = new java.util.ArrayList<>(entries);
            out.add(Layers.withField(firstDir(entries), java.util.Map.of("name", "a/".repeat(400_000) + "f")));
            return out;
        });
        TocIndex index = EStargzBlob.open(RangeReader.of(veryDeep.blob()), veryDeep.result().tocDigest(), deeper).index();
        assertEquals(400_000 * 2 + 1, index.lookup("a/".repeat(400_000) + "f").path().length(), "no StackOverflowError");
    }

    @ParameterizedTest
    @CsvSource({"256,true", "255,false"})
    void namesLongerThanTheKernelReturnsAreRefused(int length, boolean refused) throws Exception {
        String name = "x".repeat(length);
        Layers.Converted c = Layers.rewriteToc(sample, entries -> {
            List<TocEntry> out = new java.util.ArrayList<>(entries);
            out.add(Layers.withField(firstDir(entries), java.util.Map.of("name", "etc/" + name)));
            return out;
        });
        if (refused) {
            InvalidBlobException e = assertThrows(InvalidBlobException.class, c::open);
            assertTrue(e.getMessage().contains("256-byte name"), e.getMessage());
        } else {
            assertNotNull(c.open().index().lookup("etc/" + name));
        }
    }

    @ParameterizedTest
    @CsvSource(value = {"''|nothing", "a\u0000b|NUL"}, delimiter = '|')
    void emptyOrNulSymlinkTargetsAreRefused(String target, String said) throws Exception {
        String real = target.replace("\\u0000", "\0");
        Layers.Converted c = Layers.rewriteToc(sample, entries -> entries.stream()
                .map(e -> e.type() == EntryType.SYMLINK ? Layers.withField(e, java.util.Map.of("linkName", real)) : e)
                .toList());
        InvalidBlobException e = assertThrows(InvalidBlobException.class, c::open);
        assertTrue(e.getMessage().contains(said), e.getMessage());
    }

    @Test
    void symlinkSizeCountsBytesNotCharacters() throws Exception {
        Layers.Converted c = Layers.rewriteToc(sample, entries -> entries.stream()
                .map(e -> e.type() == EntryType.SYMLINK ? Layers.withField(e, java.util.Map.of("linkName", "d\u00e9j\u00e0/\u6587")) : e)
                .toList());
        assertEquals(10, c.open().index().lookup("link").size(), "d, e-acute (2), j, a-grave (2), /, one CJK (3)");
    }
}
