package dev.starling.estargz;

import static dev.starling.estargz.Layers.layer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.write.ConvertOptions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Ports {@code testDigestAndVerify} (compat doc 6.1): what verification must catch. */
class VerificationTest {
    private static final ConvertOptions CHUNK3 = ConvertOptions.defaults().withChunkSize(3);

    @Test
    void tocOfAnotherLayerFailsVerification() throws Exception {
        Layers.Converted test = layer().dir("test").convert(CHUNK3);
        Layers.Converted test2 = layer().dir("test2").convert(CHUNK3);
        VerificationException e = assertThrows(VerificationException.class,
                () -> EStargzBlob.open(RangeReader.of(test2.blob()), test.result().tocDigest()));
        assertTrue(e.getMessage().contains(test.result().tocDigest()), e.getMessage());
    }

    @Test
    void landmarkChunkHasTheKnownDigest() throws Exception {
        EStargzBlob blob = layer().file("a", "a").convert(CHUNK3).open();
        TocNode landmark = blob.index().lookup(TocIndex.NO_PREFETCH_LANDMARK);
        assertEquals("sha256:dc0e9c3658a1a3ed1ec94274d8b19925c93e1abb7ddba294923ad9bde30f8cb8",
                Digests.format(blob.index().chunk(landmark, 0).digest()));
        assertEquals(1, blob.read(landmark, 0, 10)[0] == 0x0f ? 1 : 0);
    }

    @Test
    void flippedChunkByteIsCaughtAndNamed() throws Exception {
        Layers.Converted c = layer().file("baz.txt", "").file("a", "a").dir("test").file("test/bar.txt", "bbb").convert(CHUNK3);
        EStargzBlob good = c.open();
        Chunk chunk = good.index().chunk(good.index().lookup("test/bar.txt"), 0);
        byte[] data = good.readChunk(chunk);
        data[0] ^= 1;
        VerificationException e = assertThrows(VerificationException.class, () -> ChunkDecoder.verify(chunk, data));
        assertTrue(e.getMessage().contains("test/bar.txt"), e.getMessage());
    }

    @Test
    void modifiedContentInTheBlobFailsOnlyThatChunk() throws Exception {
        Layers.Converted c = layer().file("a", "aaa").file("b", "bbb").convert(ConvertOptions.defaults().withLevel(0));
        byte[] blob = c.blob().clone();
        EStargzBlob opened = c.open();
        Chunk b = opened.index().chunk(opened.index().lookup("b"), 0);
        // level 0 stores bytes verbatim: find "bbb" inside b's member and change it
        int at = indexOf(blob, "bbb".getBytes(), (int) b.compressedOffset());
        blob[at] = 'X';
        EStargzBlob tampered = EStargzBlob.open(RangeReader.of(blob), c.result().tocDigest());
        assertEquals("aaa", new String(tampered.read(tampered.index().lookup("a"), 0, 3)));
        InvalidBlobException e = assertThrows(InvalidBlobException.class,
                () -> tampered.read(tampered.index().lookup("b"), 0, 3));
        assertTrue(e.getMessage().contains("\"b\""), e.getMessage());
        BlobVerifier.Report report = BlobVerifier.verify(tampered);
        assertFalse(report.ok());
        assertEquals(1, report.problems().size());
    }

    @Test
    void erasedChunkDigestCannotBeVerified() throws Exception {
        Layers.Converted c = layer().file("big", "0123456789abcdefghijk").convert(CHUNK3);
        Layers.Converted erased = Layers.rewriteToc(c, entries -> entries.stream()
                .map(e -> e.type() == EntryType.CHUNK && e.chunkOffset() == 6
                        ? Layers.withField(e, Map.of("chunkDigest", "")) : e).toList());
        EStargzBlob blob = erased.open();
        BlobVerifier.Report report = BlobVerifier.verify(blob);
        assertEquals(1, report.problems().size(), report.problems().toString());
        assertTrue(report.problems().getFirst().contains("no digest"), report.problems().toString());
    }

    @Test
    void duplicatedOffsetIsRejectedAtOpen() throws Exception {
        Layers.Converted c = layer().file("big", "0123456789abcdefghijk").file("x", "14 more bytes.").convert(CHUNK3);
        long[] first = {-1};
        Layers.Converted dup = Layers.rewriteToc(c, entries -> entries.stream().map(e -> {
            if (e.hasData() && e.offset() > 200 && first[0] < 0) {
                first[0] = e.offset();
                return e;
            }
            return e.hasData() && first[0] > 0 && e.type() == EntryType.CHUNK
                    ? Layers.withField(e, Map.of("offset", first[0])) : e;
        }).toList());
        InvalidBlobException e = assertThrows(InvalidBlobException.class, dup::open);
        assertTrue(e.getMessage().contains("offset"), e.getMessage());
    }

    @Test
    void retargetedHardlinkChangesTheTocDigest() throws Exception {
        Layers l = layer().file("a", "aaa").file("b", "bbb").hardlink("link", "a");
        Layers.Converted c = l.convert(CHUNK3);
        Layers.Converted moved = Layers.rewriteToc(c, entries -> entries.stream()
                .map(e -> e.type() == EntryType.HARDLINK ? Layers.withField(e, Map.of("linkName", "b")) : e).toList());
        assertNotEquals(c.result().tocDigest(), moved.result().tocDigest());
        assertThrows(VerificationException.class,
                () -> EStargzBlob.open(RangeReader.of(moved.blob()), c.result().tocDigest()));
        EStargzBlob blob = moved.open();
        assertEquals("bbb", new String(blob.read(blob.index().lookup("link"), 0, 3)));
    }

    @Test
    void wholeFileDigestIsCheckedForChunkedFiles() throws Exception {
        Layers.Converted c = layer().file("big", "0123456789abcdefghijk").convert(CHUNK3);
        Layers.Converted wrong = Layers.rewriteToc(c, entries -> entries.stream()
                .map(e -> e.type() == EntryType.REG && e.name().equals("big")
                        ? new TocEntry(e.name(), e.type(), e.size(), e.modTime(), e.linkName(), e.mode(), e.uid(),
                        e.gid(), e.userName(), e.groupName(), e.offset(), e.innerOffset(), e.devMajor(), e.devMinor(),
                        e.xattrs(), Digests.format(new byte[32]), e.chunkOffset(), e.chunkSize(), e.chunkDigest())
                        : e).toList());
        BlobVerifier.Report report = BlobVerifier.verify(wrong.open());
        assertEquals(List.of("\"big\": whole-file content does not match its digest "
                + Digests.format(new byte[32])), report.problems());
    }

    private static int indexOf(byte[] hay, byte[] needle, int from) {
        outer:
        for (int i = from; i <= hay.length - needle.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
