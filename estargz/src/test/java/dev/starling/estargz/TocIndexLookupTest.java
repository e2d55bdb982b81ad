package dev.starling.estargz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.starling.estargz.write.ConvertOptions;
import org.junit.jupiter.api.Test;

/** Finding a chunk by where it is (member and inner offset): how a node checks a peer's request against its TOC. */
class TocIndexLookupTest {
    @Test
    void everyChunkIsFoundAtItsPlaceAndNothingElseIs() throws Exception {
        Layers layer = Layers.layer();
        for (int i = 0; i < 300; i++) { // small files share members (inner offsets), big ones span several chunks
            layer.file("small/f" + i, Layers.random(i, 10 + i * 7));
        }
        layer.file("big.bin", Layers.random(1, 3 * (1 << 20) + 17));
        TocIndex index = layer.convert(ConvertOptions.defaults().withChunkSize(1 << 20).withMinChunkSize(64 << 10))
                .open().index();
        int shared = 0;
        for (int i = 0; i < index.chunkTotal(); i++) {
            Chunk c = index.chunkAt(i);
            if (c == null) {
                continue;
            }
            Chunk found = index.chunkAt(c.compressedOffset(), c.innerOffset());
            assertEquals(c.index(), found.index());
            assertArrayEquals(c.digest(), found.digest());
            shared += c.innerOffset() > 0 ? 1 : 0;
            assertNull(index.chunkAt(c.compressedOffset(), c.innerOffset() + 1), "one byte off is no chunk");
            assertNull(index.chunkAt(c.compressedOffset() + 1, c.innerOffset()), "nor is another member");
        }
        assertEquals(true, shared > 100, "small files share members: " + shared);
        assertNull(index.chunkAt(Long.MAX_VALUE, 0));
        assertNull(index.chunkAt(0, -1));
    }
}
