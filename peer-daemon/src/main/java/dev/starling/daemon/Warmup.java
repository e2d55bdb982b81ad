package dev.starling.daemon;

import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.tar.TarHeader;
import dev.starling.estargz.tar.TarWriter;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fetch.LayerReader;
import dev.starling.fetch.RegistryOrigin;
import dev.starling.fuse.ServedLayer;
import dev.starling.fuse.LayerSource;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.MountTable;
import dev.starling.fuse.StoreMount;
import dev.starling.registry.Digest;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * The read path run over a layer of its own, in the background right after start: a TOC parsed,
 * the layer served through a store of its own (the paths CRI-O takes) and walked, small files and
 * chunks read through a {@link LayerReader}. The
 * first image a runtime asks for is then served by compiled code, not the interpreter: measured
 * here, the first byte of a JDK image through the store took 0.35-0.6 s in a fresh daemon and
 * 0.14 s once another image had gone through the same code. Nothing of it touches the node's
 * tiers or mounts; it runs under {@code ROOT/warmup} and leaves nothing behind.
 */
final class Warmup {
    private static final Logger LOG = Logger.getLogger(Warmup.class.getName());
    private static final int DIRECTORIES = 40;
    private static final int FILES_PER_DIRECTORY = 100;
    private static final int ROUNDS = 5;

    private Warmup() {
    }

    /** True when every round read back what it wrote; {@code stop} ends it after the round under way. */
    static boolean run(Path dir, java.util.function.BooleanSupplier stop) {
        long t0 = System.nanoTime();
        try {
            Files.createDirectories(dir); // a killed daemon's leftovers: each round's mount clears a stale mount first
            Path tar = dir.resolve("layer.tar");
            long written = 0;
            try (OutputStream out = Files.newOutputStream(tar); TarWriter writer = new TarWriter(out)) {
                for (int d = 0; d < DIRECTORIES; d++) {
                    for (int f = 0; f < FILES_PER_DIRECTORY; f++) {
                        byte[] data = ("warm-up file " + d + "/" + f + "\n").repeat(1 + f).getBytes(StandardCharsets.UTF_8);
                        TarHeader h = TarHeader.regularFile(String.format("d%02d/f%03d.txt", d, f), data.length);
                        h.mode = 0644;
                        writer.add(h, data);
                        written += data.length;
                    }
                }
                byte[] big = new byte[9 << 20]; // three chunks: a sequential read with read-ahead
                new java.util.Random(1).nextBytes(big);
                TarHeader h = TarHeader.regularFile("big.bin", big.length);
                h.mode = 0644;
                writer.add(h, big);
                written += big.length;
                writer.finish();
            }
            Path blob = dir.resolve("layer.esgz");
            ConvertResult converted = Converter.convert(tar, blob, ConvertOptions.defaults());
            for (int round = 0; round < ROUNDS && !stop.getAsBoolean(); round++) {
                once(dir.resolve("round-" + round), blob, converted.tocDigest(), written);
            }
            LOG.fine("warmed the read path up in " + (System.nanoTime() - t0) / 1_000_000 + " ms");
            return true;
        } catch (IOException | RuntimeException e) {
            LOG.info("warming the read path up failed (the first image will be slower, nothing else): " + e);
            return false;
        } finally {
            try {
                clear(dir);
            } catch (IOException e) {
                LOG.warning("cannot remove " + dir + ": " + e);
            }
        }
    }

    private static void once(Path dir, Path blobFile, String tocDigest, long expectedBytes) throws IOException {
        try (RangeReader blob = RangeReader.open(blobFile);
             ChunkStore store = new ChunkStore(new DiskChunkCache(dir.resolve("chunks"), 64L << 20), 16L << 20,
                     FetchOptions.DEFAULTS.withPrefetch(false).withBackgroundFetch(false))) {
            EStargzBlob opened = EStargzBlob.open(blob, tocDigest);
            RegistryOrigin origin = new RegistryOrigin(blob, new ChunkDecoder(opened.footer().format()), store);
            Digest digest = Digest.parse("sha256:" + "0".repeat(64));
            try (LayerReader reader = new LayerReader(digest, opened, blob.size(), origin, store)) {
                // through a store of its own, as CRI-O reads a layer: the store's paths, then the layer's
                LayerSource layers = new LayerSource() {
                    @Override
                    public void checkReference(String imageRef) {
                    }

                    @Override
                    public ServedLayer open(String imageRef, String key) throws IOException {
                        return new ServedLayer(opened.index(), reader, "{}".getBytes(StandardCharsets.UTF_8), blob,
                                blob.size(), null, () -> { });
                    }
                };
                try (StoreMount mount = StoreMount.mount(layers, dir.resolve("store"), MountOptions.DEFAULTS,
                        java.time.Duration.ofMinutes(1), System::nanoTime)) {
                    Path diff = mount.mountPoint().resolve(Base64.getEncoder().encodeToString(
                            "warmup.invalid/warmup:latest".getBytes(StandardCharsets.UTF_8))).resolve(digest.toString()).resolve("diff");
                    List<Path> files;
                    try (Stream<Path> walk = Files.walk(diff)) {
                        files = walk.filter(Files::isRegularFile).toList();
                    }
                    long read = 0;
                    for (Path f : files) {
                        read += Files.readAllBytes(f).length;
                    }
                    if (files.size() != DIRECTORIES * FILES_PER_DIRECTORY + 1 || read != expectedBytes) {
                        throw new IOException("the warm-up layer read back " + files.size() + " files, " + read + " bytes, not "
                                + (DIRECTORIES * FILES_PER_DIRECTORY + 1) + " files, " + expectedBytes + " bytes");
                    }
                }
            }
        }
    }

    private static void clear(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        MountTable.deleteTree(dir); // a killed daemon's warm-up mounts are detached, never walked into
    }
}
