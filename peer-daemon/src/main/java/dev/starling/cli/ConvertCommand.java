package dev.starling.cli;

import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.estargz.write.Converter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code starling convert IN OUT}: a tar layer to an eStargz blob. */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Convert a tar layer (plain, .tar.gz or .tar.zst) into an eStargz blob.",
                "Prints the TOC digest (the containerd.io/snapshot/stargz/toc.digest annotation), the DiffID",
                "and the sizes."})
final class ConvertCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IN", description = "input layer: tar, tar.gz or tar.zst")
    Path input;

    @Parameters(index = "1", paramLabel = "OUT", description = "output eStargz blob")
    Path output;

    @Option(names = "--prioritize", paramLabel = "FILE",
            description = "file listing the paths read at start-up, one per line, in access order")
    Path prioritize;

    @Option(names = "--chunk-size", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "uncompressed bytes per chunk (default: 4MiB)")
    int chunkSize = ConvertOptions.DEFAULT_CHUNK_SIZE;

    @Option(names = "--min-chunk-size", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "pack small files into one gzip member until it holds SIZE compressed bytes (default: 0, off)")
    int minChunkSize;

    @Option(names = "--level", description = "gzip level 0-9 (default: ${DEFAULT-VALUE})")
    int level = ConvertOptions.DEFAULT_LEVEL;

    @Option(names = "--threads", description = "compression threads (default: all cores)")
    int threads;

    @Option(names = "--lossless", description = "keep the input tar byte for byte (no reordering, no landmark)")
    boolean lossless;

    @Option(names = "--json", description = "print the result as JSON")
    boolean json;

    @Override
    public Integer call() throws Exception {
        List<String> prioritized = prioritize == null ? List.of()
                : Files.readAllLines(prioritize).stream().map(String::strip).filter(s -> !s.isEmpty()).toList();
        ConvertOptions options = new ConvertOptions(chunkSize, minChunkSize, level, threads, lossless, prioritized);
        long start = System.nanoTime();
        ConvertResult r;
        try (ProgressBar bar = new ProgressBar("converting " + input.getFileName())) {
            r = new Converter(options, bar::update).convert(input, output);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        if (json) {
            System.out.printf("{\"tocDigest\":\"%s\",\"diffId\":\"%s\",\"digest\":\"%s\",\"size\":%d,"
                            + "\"uncompressedSize\":%d,\"tocOffset\":%d,\"entries\":%d,\"seconds\":%.3f}%n",
                    r.tocDigest(), r.diffId(), r.blobDigest(), r.blobSize(), r.uncompressedSize(), r.tocOffset(),
                    r.entries(), seconds);
        } else {
            System.out.println("toc digest:        " + r.tocDigest());
            System.out.println("diff id:           " + r.diffId());
            System.out.println("blob digest:       " + r.blobDigest());
            System.out.println("blob size:         " + r.blobSize());
            System.out.println("uncompressed size: " + r.uncompressedSize());
            System.out.printf("converted %s in %.2f s (%.1f MB/s of input)%n", Sizes.human(Files.size(input)), seconds,
                    Files.size(input) / 1e6 / seconds);
        }
        return 0;
    }
}
