package dev.starling.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.estargz.Chunk;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.TocNode;
import dev.starling.estargz.tar.TarHeader;
import dev.starling.estargz.tar.TarWriter;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.Converter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which chunks are asked for ahead of a reader: none for a random reader, a doubling window for a sequential one. */
class ReadAheadWindowTest {
    static final long MIB = 1 << 20;
    @TempDir
    static Path dir;
    static TocIndex index;
    static TocNode file;

    @BeforeAll
    static void layer() throws Exception {
        Path tar = dir.resolve("layer.tar");
        try (var out = Files.newOutputStream(tar); var writer = new TarWriter(out)) {
            writer.add(TarHeader.regularFile("model.bin", 64 * MIB), new byte[(int) (64 * MIB)]);
        }
        Path blob = dir.resolve("layer.esgz");
        String toc = Converter.convert(tar, blob, ConvertOptions.defaults().withChunkSize((int) MIB).withLevel(1)).tocDigest();
        index = EStargzBlob.open(RangeReader.of(Files.readAllBytes(blob)), toc).index();
        file = index.lookup("model.bin");
    }

    @Test
    void aRandomReaderNeverTriggersIt() {
        ReadAheadWindow w = new ReadAheadWindow(index, file, 32 * MIB);
        assertEquals(List.of(), w.read(0, 128 << 10), "the first read of a file is not yet a pattern");
        assertEquals(List.of(), w.read(40 * MIB, 40 * MIB + (128 << 10)));
        assertEquals(List.of(), w.read(10 * MIB, 10 * MIB + (128 << 10)));
    }

    @Test
    void aSequentialReaderGetsAWindowThatDoublesUpToTheBound() {
        ReadAheadWindow w = new ReadAheadWindow(index, file, 8 * MIB);
        w.read(0, MIB / 2);
        List<Chunk> first = w.read(MIB / 2, MIB);
        assertEquals(1, first.size(), "1 MiB at first: a reader that stops early costs little");
        assertEquals(MIB, first.getFirst().fileOffset());
        assertEquals(List.of(), w.read(MIB, MIB + (256 << 10)), "enough is on its way");
        List<Chunk> second = w.read(MIB + (256 << 10), 2 * MIB);
        assertEquals(2, second.size(), "into the second half: the next window, twice as long");
        long askedUntil = 4 * MIB;
        int windows = 0;
        for (long pos = 2 * MIB; pos < 40 * MIB; pos += MIB / 2) {
            List<Chunk> next = w.read(pos, pos + MIB / 2);
            for (Chunk c : next) {
                assertEquals(askedUntil, c.fileOffset(), "no chunk asked for twice, none skipped");
                askedUntil += c.size();
            }
            windows += next.isEmpty() ? 0 : 1;
            assertTrue(askedUntil - (pos + MIB / 2) <= 8 * MIB + MIB, "never more than the bound ahead");
        }
        assertTrue(windows > 3);
    }

    @Test
    void noReadAheadWhenTheMountSaysNone() {
        ReadAheadWindow w = new ReadAheadWindow(index, file, 0);
        w.read(0, MIB);
        assertEquals(List.of(), w.read(MIB, 2 * MIB));
    }
}
