package dev.starling.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.write.ConvertOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which chunks one request fetches, on real converted layers (one member per file, and packed). */
class SpanPlanTest {
    @TempDir
    static Path work;
    static TocIndex perFile;
    static TocIndex packed;

    @BeforeAll
    static void convert() throws Exception {
        perFile = index(work.resolve("per-file"), ConvertOptions.defaults());
        packed = index(work.resolve("packed"), ConvertOptions.defaults().withMinChunkSize(64 << 10));
    }

    private static TocIndex index(Path dir, ConvertOptions options) throws Exception {
        Files.createDirectories(dir);
        TestLayer.Converted layer = TestLayer.convert(dir, 200, options);
        return dev.starling.estargz.EStargzBlob.open(dev.starling.estargz.RangeReader.of(layer.blob()), layer.tocDigest()).index();
    }

    private static int at(TocIndex index, String file) {
        return index.chunk(index.lookup(file), 0).index();
    }

    @Test
    void smallFilesJoinUntilTheUnitIsFull() {
        int first = at(perFile, "f-000");
        List<Chunk> span = SpanPlan.plan(perFile, first, 64 << 10, 64 << 10, Long.MAX_VALUE, k -> true);
        long bytes = span.getLast().compressedEnd() - span.getFirst().compressedOffset();
        assertTrue(span.size() > 10 && bytes <= 64 << 10, span.size() + " chunks, " + bytes + " bytes");
        for (int i = 1; i < span.size(); i++) {
            assertEquals(span.get(i - 1).index() + 1, span.get(i).index(), "in blob order, no chunk skipped");
        }
    }

    @Test
    void theSpanEndsAtAChunkThatIsNotWantedAndAtStopAt() {
        int first = at(perFile, "f-000");
        int held = at(perFile, "f-005");
        List<Chunk> span = SpanPlan.plan(perFile, first, 1 << 20, 64 << 10, Long.MAX_VALUE, k -> k != held);
        assertEquals(held - first, span.size(), "up to the held chunk, not past it");
        long stopAt = perFile.chunkAt(first + 3).compressedOffset();
        assertEquals(3, SpanPlan.plan(perFile, first, 1 << 20, 64 << 10, stopAt, k -> true).size());
    }

    @Test
    void aChunkReadInAPackedMemberBringsItsWantedSiblingsBeforeIt() {
        int middle = -1;
        for (int i = 50; i < 200 && middle < 0; i++) {
            int k = at(packed, String.format("f-%03d", i));
            middle = packed.chunkAt(k).innerOffset() > 0 ? k : -1;
        }
        assertTrue(middle > 0, "64 KiB members hold several 1-4 KB files");
        Chunk c = packed.chunkAt(middle);
        List<Chunk> span = SpanPlan.plan(packed, middle, 1 << 20, 0, c.compressedEnd(), k -> true);
        assertTrue(span.size() > 1, "siblings in its member come along: they cost no more bytes");
        assertTrue(span.stream().allMatch(s -> s.compressedOffset() == c.compressedOffset()), "and nothing outside the member");
        assertTrue(span.getFirst().index() < middle, "those before it too, in blob order");
    }

    @Test
    void aLargeFilesChunksFollowEachOtherWithinTheUnit() {
        int first = at(perFile, "z-big");
        assertEquals(1, SpanPlan.plan(perFile, first, 2 << 20, 64 << 10, Long.MAX_VALUE, k -> true).size(),
                "a 4 MiB chunk fills a 2 MiB unit alone");
        assertEquals(3, SpanPlan.plan(perFile, first, 64 << 20, 64 << 10, Long.MAX_VALUE, k -> true).size());
    }
}
