package dev.starling.cli;

import dev.starling.estargz.BlobVerifier;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.EntryType;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocNode;
import dev.starling.estargz.tar.TarWriter;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code starling demo}: Starling's main job on an embedded default, with nothing to set up. Today:
 * a sample layer (the running JDK's {@code lib/}, a realistic ~200 MB image layer) is converted to
 * eStargz, its TOC opened, one file read lazily (only that file's chunks are fetched), and every
 * chunk verified. Later stages add the local registry, the FUSE mount and a cluster of peers.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Convert a sample layer to eStargz, read a file lazily from it and verify it (no set-up needed).")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--work-dir", description = "where to write the sample layer and blob (default: a temp dir, removed after)")
    Path workDir;

    @Option(names = "--keep", description = "keep the work directory")
    boolean keep;

    @Override
    public Integer call() throws Exception {
        Path dir = workDir != null ? Files.createDirectories(workDir) : Files.createTempDirectory("starling-demo-");
        try {
            return run(dir);
        } finally {
            if (workDir == null && !keep) {
                deleteTree(dir);
            } else {
                System.out.println("work directory kept: " + dir);
            }
        }
    }

    private int run(Path dir) throws Exception {
        Path source = Path.of(System.getProperty("java.home"), "lib");
        Path tar = dir.resolve("sample-layer.tar");
        Path blob = dir.resolve("sample-layer.esgz");
        System.out.println("1. sample layer: tar of " + source);
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tar), 1 << 20);
             TarWriter writer = new TarWriter(out)) {
            writer.addTree(source, "opt/jdk/lib/");
        }
        System.out.println("   " + Sizes.human(Files.size(tar)));

        System.out.println("2. convert to eStargz (gzip level 9, 4 MiB chunks, all cores)");
        long t0 = System.nanoTime();
        ConvertResult r;
        try (ProgressBar bar = new ProgressBar("   converting")) {
            r = new Converter(ConvertOptions.defaults(), bar::update).convert(tar, blob);
        }
        double convertSeconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("   %s -> %s in %.2f s (%.0f MB/s)%n", Sizes.human(Files.size(tar)), Sizes.human(r.blobSize()),
                convertSeconds, Files.size(tar) / 1e6 / convertSeconds);
        System.out.println("   toc digest " + r.tocDigest());
        System.out.println("   diff id    " + r.diffId());

        AtomicLong fetched = new AtomicLong();
        try (RangeReader file = RangeReader.open(blob)) {
            RangeReader counting = new RangeReader() {
                @Override
                public long size() throws IOException {
                    return file.size();
                }

                @Override
                public byte[] read(long offset, int length) throws IOException {
                    fetched.addAndGet(length);
                    return file.read(offset, length);
                }
            };
            System.out.println("3. open lazily: footer + TOC only, checked against the toc digest");
            t0 = System.nanoTime();
            EStargzBlob opened = EStargzBlob.open(counting, r.tocDigest());
            System.out.printf("   %d nodes indexed in %.1f ms, %s fetched of %s%n", opened.index().nodeCount(),
                    (System.nanoTime() - t0) / 1e6, Sizes.human(fetched.get()), Sizes.human(r.blobSize()));

            TocNode release = opened.index().lookup("opt/jdk/lib/security/default.policy");
            if (release == null || release.type() != EntryType.REG) {
                release = largestSmallFile(opened);
            }
            long before = fetched.get();
            byte[] content = opened.read(release, 0, (int) release.size());
            System.out.printf("4. read %s (%d bytes): fetched %s more, verified against its chunk digest%n",
                    release.path(), content.length, Sizes.human(fetched.get() - before));

            System.out.println("5. verify every chunk of the layer");
            t0 = System.nanoTime();
            BlobVerifier.Report report = BlobVerifier.verify(opened);
            System.out.printf("   %s: %d files, %d chunks, %s in %.2f s%n", report.ok() ? "OK" : "FAILED",
                    report.files(), report.chunks(), Sizes.human(report.bytes()), (System.nanoTime() - t0) / 1e9);
            report.problems().forEach(p -> System.out.println("   " + p));
            return report.ok() ? 0 : 1;
        }
    }

    private static TocNode largestSmallFile(EStargzBlob blob) {
        TocNode best = null;
        for (int id = 0; id < blob.index().nodeCount(); id++) {
            TocNode n = blob.index().node(id);
            if (n.type() == EntryType.REG && n.size() < 1 << 20 && (best == null || n.size() > best.size())) {
                best = n;
            }
        }
        return best;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
