import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.tar.TarHeader;
import dev.starling.estargz.tar.TarWriter;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import java.io.BufferedOutputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * TOC open time and retained heap per entry for a layer of N files (default 20,000) spread over
 * directories like a distro layer. Run through bench/toc-open.sh, which builds the jars first.
 */
public class TocOpenBench {
    public static void main(String[] args) throws Exception {
        int files = args.length > 0 ? Integer.parseInt(args[0]) : 20_000;
        int runs = args.length > 1 ? Integer.parseInt(args[1]) : 15;
        Path dir = Files.createTempDirectory("starling-toc-bench-");
        Path tar = dir.resolve("layer.tar");
        Random random = new Random(1);
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tar), 1 << 20);
             TarWriter w = new TarWriter(out)) {
            for (int i = 0; i < files; i++) {
                if (i % 50 == 0) {
                    TarHeader d = new TarHeader();
                    d.type = TarHeader.DIR;
                    d.name = "usr/lib/pkg" + (i / 50) + "/";
                    d.mode = 0755;
                    d.modTime = 1_700_000_000L;
                    w.add(d, new byte[0]);
                }
                TarHeader h = new TarHeader();
                h.name = "usr/lib/pkg" + (i / 50) + "/module_" + i + (i % 3 == 0 ? ".so" : ".py");
                h.mode = 0644;
                h.modTime = 1_700_000_000L;
                h.userName = "root";
                h.groupName = "root";
                byte[] data = new byte[random.nextInt(4096)];
                Arrays.fill(data, (byte) ('a' + i % 26));
                w.add(h, data);
            }
        }
        Path blobFile = dir.resolve("layer.esgz");
        ConvertResult result = Converter.convert(tar, blobFile, ConvertOptions.defaults().withLevel(6));
        byte[] blob = Files.readAllBytes(blobFile);

        long[] nanos = new long[runs];
        EStargzBlob opened = null;
        for (int i = 0; i < runs + 5; i++) { // 5 warm-up opens
            long t0 = System.nanoTime();
            opened = EStargzBlob.open(RangeReader.of(blob), result.tocDigest());
            if (i >= 5) {
                nanos[i - 5] = System.nanoTime() - t0;
            }
        }
        Arrays.sort(nanos);
        int entries = result.entries();
        opened = null;
        long before = usedHeapAfterGc();
        EStargzBlob kept = EStargzBlob.open(RangeReader.of(blob),
                result.tocDigest());
        long after = usedHeapAfterGc();
        System.out.printf("layer: %d files, %d TOC entries, TOC %d KiB, blob %d KiB%n", files, entries,
                (blob.length - result.tocOffset()) / 1024, blob.length / 1024);
        System.out.printf("TOC open (footer + inflate + sha256 + parse + index), median of %d: %.1f ms (min %.1f, max %.1f)%n",
                runs, nanos[runs / 2] / 1e6, nanos[0] / 1e6, nanos[runs - 1] / 1e6);
        System.out.printf("retained heap of the opened index: %d bytes = %.0f bytes per entry (%d nodes)%n",
                after - before, (double) (after - before) / entries, kept.index().nodeCount());
        Files.delete(tar);
        Files.delete(blobFile);
        Files.delete(dir);
    }

    private static long usedHeapAfterGc() throws InterruptedException {
        for (int i = 0; i < 4; i++) {
            System.gc();
            Thread.sleep(50);
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
