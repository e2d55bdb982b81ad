import dev.starling.registry.ImageReference;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Range-read throughput from a registry through RegistryClient: 1 MiB and 4 MiB reads at random
 * aligned offsets of a 256 MiB blob, one and eight at a time. Run through bench/range-read.sh.
 */
public class RangeReadBench {
    public static void main(String[] args) throws Exception {
        String host = args[0];
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        ImageReference repo = ImageReference.parse(host + "/bench/blob:v1");
        byte[] data = new byte[256 << 20];
        new Random(1).nextBytes(data);
        Path file = Files.createTempFile("starling-bench-", ".blob");
        Files.write(file, data);
        String digest = Manifest.sha256(data);
        try (RegistryClient client = RegistryClient.anonymous()) {
            client.pushBlob(repo, digest, file, null);
            System.out.printf("blob: 256 MiB on %s; %d s per cell, median of %d rounds%n", host, seconds, rounds);
            System.out.printf("%-10s %-12s %10s%n", "read size", "concurrency", "MB/s");
            for (int size : new int[] {1 << 20, 4 << 20}) {
                for (int threads : new int[] {1, 8}) {
                    double[] results = new double[rounds];
                    for (int r = 0; r < rounds; r++) {
                        results[r] = run(client, repo, digest, data.length, size, threads, seconds);
                    }
                    Arrays.sort(results);
                    System.out.printf("%-10s %-12d %10.0f%n", (size >> 20) + " MiB", threads, results[rounds / 2]);
                }
            }
        } finally {
            Files.delete(file);
        }
    }

    static double run(RegistryClient client, ImageReference repo, String digest, long blobSize, int size, int threads,
                      int seconds) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        AtomicLong bytes = new AtomicLong();
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        long t0 = System.nanoTime();
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int seed = t;
            futures.add(pool.submit(() -> {
                Random random = new Random(seed * 7919L + System.nanoTime());
                while (System.nanoTime() < end) {
                    long offset = (long) random.nextInt((int) (blobSize / size)) * size;
                    bytes.addAndGet(client.readBlob(repo, digest, offset, size).length);
                }
                return null;
            }));
        }
        for (Future<?> f : futures) {
            f.get();
        }
        pool.shutdown();
        return bytes.get() / 1e6 / ((System.nanoTime() - t0) / 1e9);
    }
}
