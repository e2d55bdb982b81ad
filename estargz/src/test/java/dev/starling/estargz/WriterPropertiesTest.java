package dev.starling.estargz;

import static dev.starling.estargz.Layers.layer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.write.ConvertOptions;
import java.io.ByteArrayOutputStream;
import java.util.List;
import java.util.Map;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Claims the docs make about the writer, and the older producers the reader must still accept. */
class WriterPropertiesTest {
    private static Layers sample() {
        Layers l = layer().dir("data");
        for (int i = 0; i < 40; i++) {
            l.file("data/f" + i, Layers.random(i, 1000 + i * 3000));
        }
        return l.file("data/text", "hello ".repeat(100_000));
    }

    @Test
    void outputIsTheSameForAnyThreadCount() throws Exception {
        ConvertOptions options = ConvertOptions.defaults().withChunkSize(64 * 1024);
        byte[] one = sample().convert(options.withThreads(1)).blob();
        for (int threads : new int[] {2, 3, 8}) {
            assertArrayEquals(one, sample().convert(options.withThreads(threads)).blob(), threads + " threads");
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 6, 9})
    void everyGzipLevelRoundTrips(int level) throws Exception {
        Layers.Converted c = sample().convert(ConvertOptions.defaults().withChunkSize(32 * 1024).withLevel(level));
        EStargzBlob blob = c.open();
        assertTrue(BlobVerifier.verify(blob).ok());
        TocNode text = blob.index().lookup("data/text");
        assertEquals("hello ".repeat(100_000), new String(blob.read(text, 0, (int) text.size())));
    }

    @Test
    void huffmanOnlyMembersFromOtherWritersAreRead() throws Exception {
        // Other producers may use any deflate strategy; the reader must not care.
        byte[] payload = "huffman only ".repeat(1000).getBytes();
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        d.setStrategy(Deflater.HUFFMAN_ONLY);
        d.setInput(payload);
        d.finish();
        ByteArrayOutputStream member = new ByteArrayOutputStream();
        member.write(new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, (byte) 0xff});
        byte[] buf = new byte[65536];
        while (!d.finished()) {
            member.write(buf, 0, d.deflate(buf));
        }
        byte[] decoded = ChunkDecoder.gzipSlice(member.toByteArray(), 13, 26);
        assertEquals("huffman only huffman only ", new String(decoded));
    }

    @Test
    void legacyStargzBlobWithoutChunkDigestsIsReadAndVerifiedByFileDigest() throws Exception {
        Layers.Converted c = layer().file("a", "legacy a").file("b", "legacy b").convert(ConvertOptions.defaults());
        Layers.Converted noChunkDigests = Layers.rewriteToc(c, entries -> entries.stream()
                .map(e -> Layers.withField(e, Map.of("chunkDigest", ""))).toList());
        byte[] blob = noChunkDigests.blob();
        long tocOffset = c.result().tocOffset();
        // Swap the 51-byte eStargz footer for the 47-byte CRFS one.
        byte[] legacy = java.util.Arrays.copyOf(blob, blob.length - 51 + 47);
        System.arraycopy(Footer.legacyStargz(tocOffset), 0, legacy, blob.length - 51, 47);
        EStargzBlob opened = EStargzBlob.open(RangeReader.of(legacy), noChunkDigests.result().tocDigest());
        assertEquals(Footer.Format.LEGACY_STARGZ, opened.footer().format());
        assertEquals("legacy b", new String(opened.read(opened.index().lookup("b"), 0, 100)));
        assertTrue(BlobVerifier.verify(opened).ok(), "unchunked files fall back to their whole-file digest");
    }

    @Test
    void minChunkSizePackingMakesFewerMembersAndSmallerBlobs() throws Exception {
        Layers l = layer();
        for (int i = 0; i < 200; i++) {
            l.file("small/" + i, "content of a small file number " + i + "\n");
        }
        Layers.Converted plain = l.convert(ConvertOptions.defaults());
        Layers.Converted packed = l.convert(ConvertOptions.defaults().withMinChunkSize(16 * 1024));
        assertTrue(Layers.members(packed.blob()).size() * 10 < Layers.members(plain.blob()).size());
        assertTrue(packed.blob().length < plain.blob().length);
        assertTrue(BlobVerifier.verify(packed.open()).ok());
        List<Long> members = Layers.members(packed.blob());
        assertTrue(members.size() >= 3, "headers/payload member(s), TOC, footer");
    }
}
