package dev.starling.fetch;

import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.Digest;
import dev.starling.registry.Manifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * A converted layer of small files and one large file, in memory, read through a real
 * {@link ChunkStore}, {@link RegistryOrigin} and {@link LayerReader} over a {@link FaultyRangeReader},
 * with a fake clock: the read line without a registry or a sleep.
 */
final class TestLayer implements AutoCloseable {
    final byte[] blobBytes;
    final Digest digest;
    final String tocDigest;
    final FaultyRangeReader blob;
    final FakeClock clock = new FakeClock();
    final ChunkStore store;
    final LayerReader reader;

    /** A converted layer blob and the digest of its TOC. */
    record Converted(byte[] blob, String tocDigest) {
    }

    /** {@code smallFiles} files of 1-4 KB ("f-000"...) and a 9 MiB "z-big", converted with {@code convert}. */
    static Converted convert(Path dir, int smallFiles, ConvertOptions convert) throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Random random = new Random(7);
        for (int i = 0; i < smallFiles; i++) {
            byte[] b = new byte[1000 + random.nextInt(3000)];
            random.nextBytes(b);
            Files.write(tree.resolve(String.format("f-%03d", i)), b);
        }
        byte[] big = new byte[9 << 20];
        random.nextBytes(big);
        Files.write(tree.resolve("z-big"), big);
        EStargzImages.Layer layer = EStargzImages.convert(tree, dir.resolve("layer.esgz"), convert);
        return new Converted(Files.readAllBytes(layer.blob()), layer.tocDigest());
    }

    /** {@code layer}'s TOC over {@code blobBytes} (the layer's own bytes, or damaged ones), its chunks kept under {@code dir}. */
    TestLayer(Path dir, Converted layer, byte[] blobBytes, FetchOptions options) throws IOException {
        this.blobBytes = blobBytes;
        this.digest = Digest.parse(Manifest.sha256(blobBytes));
        this.tocDigest = layer.tocDigest();
        this.blob = new FaultyRangeReader(blobBytes);
        EStargzBlob opened = EStargzBlob.open(RangeReader.of(blobBytes), tocDigest);
        FetchScheduler scheduler = new FetchScheduler(options, clock);
        this.store = new ChunkStore(new DiskChunkCache(dir.resolve("chunks-" + System.nanoTime()), 1L << 30), 64L << 20, scheduler);
        RegistryOrigin origin = new RegistryOrigin(blob, new ChunkDecoder(opened.footer().format()), scheduler);
        this.reader = new LayerReader(digest, opened, blobBytes.length, origin, store);
    }

    TocIndex index() {
        return reader.index();
    }

    dev.starling.estargz.Chunk chunk(String file, int n) {
        return index().chunk(index().lookup(file), n);
    }

    @Override
    public void close() throws IOException {
        reader.close();
        store.close();
    }
}
