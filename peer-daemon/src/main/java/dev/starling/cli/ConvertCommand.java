package dev.starling.cli;

import dev.starling.estargz.write.ConvertOptions;
import dev.starling.estargz.write.ConvertResult;
import dev.starling.convert.ImageConverter;
import dev.starling.estargz.write.Converter;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code starling convert IN OUT}: a tar layer to an eStargz blob. */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Convert an image in a registry, or a local tar layer, to eStargz.",
                "",
                "  convert SRC_REF DST_REF",
                "      every layer, config DiffIDs rewritten, OCI media types, the",
                "      toc.digest and uncompressed-size annotations; then pushed",
                "  convert IN.tar[.gz|.zst] OUT.esgz",
                "      one layer; prints the TOC digest, DiffID and sizes",
                "",
                "Credentials: $DOCKER_CONFIG/config.json or ~/.docker/config.json."})
final class ConvertCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "SRC", description = "image reference, or a local tar, tar.gz or tar.zst layer")
    String source;

    @Parameters(index = "1", paramLabel = "DST", description = "image reference to push to, or the output blob file")
    String destination;

    @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]",
            description = "convert only this platform of a multi-platform image (default: all)")
    String platform;

    @picocli.CommandLine.Mixin
    RegistryOptions registry = new RegistryOptions();

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
        List<String> prioritized = prioritize == null ? List.of() : PrioritizedList.read(prioritize);
        ConvertOptions options = new ConvertOptions(chunkSize, minChunkSize, level, threads, lossless, prioritized);
        Path localInput = Path.of(source);
        if (Files.isDirectory(localInput)) {
            throw new IllegalArgumentException(source + " is a directory; convert takes a tar layer (tar, tar.gz, tar.zst) "
                    + "or an image reference (make a tar of the directory first: tar -C DIR -cf layer.tar .)");
        }
        if (!Files.isRegularFile(localInput)) {
            if (looksLikeFile(source) || !looksLikeImage(source)) {
                throw new java.nio.file.NoSuchFileException(source, null, "no such file, and not an image reference "
                        + "with a registry host (like registry.example.com/app:v1)");
            }
            if (looksLikeFile(destination) || !looksLikeImage(destination)) {
                throw new IllegalArgumentException(destination + " is not an image reference: converting the image "
                        + source + " pushes the result to a registry (like registry.example.com/app:v1-esgz); to write "
                        + "one layer to a file, convert a tar layer");
            }
            return convertImage(options);
        }
        Path input = localInput;
        Path output = Path.of(destination);
        if (looksLikeImage(destination) && !looksLikeFile(destination)) {
            throw new IllegalArgumentException(destination + " looks like an image reference, but converting the local "
                    + "layer " + source + " writes a file; give an output file (like layer.esgz), or convert an image "
                    + "reference to push an image");
        }
        Path parent = output.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            throw new java.nio.file.NoSuchFileException(parent.toString(), null,
                    "the output's directory does not exist; create it first");
        }
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

    /** A path, not a reference: absolute or relative by its look, or named like a layer file. */
    static boolean looksLikeFile(String text) {
        return text.startsWith("/") || text.startsWith("./") || text.startsWith("../")
                || text.matches("(?i).*\\.(tar|tgz|gz|zst|esgz|tar\\.gz|tar\\.zst)$");
    }

    /** A reference that names its registry (host with a dot or a port, or localhost), as users push to. */
    static boolean looksLikeImage(String text) {
        try {
            ImageReference.parse(text);
        } catch (IllegalArgumentException e) {
            return false;
        }
        int slash = text.indexOf('/');
        String first = slash < 0 ? "" : text.substring(0, slash);
        return first.contains(".") || first.contains(":") || first.equals("localhost");
    }

    private int convertImage(ConvertOptions options) throws Exception {
        ImageReference src = ImageReference.parse(source);
        ImageReference dst = ImageReference.parse(destination);
        RegistryClient.Settings settings = registry.settings();
        Path work = Files.createTempDirectory("starling-convert-");
        long start = System.nanoTime();
        LayerProgress progress = new LayerProgress(json);
        try (RegistryClient client = new RegistryClient(settings)) {
            ImageConverter converter = new ImageConverter(client, options, work, progress);
            String digest = converter.convert(src, dst, platform == null ? null : Descriptor.Platform.parse(platform));
            double seconds = (System.nanoTime() - start) / 1e9;
            if (json) {
                com.fasterxml.jackson.databind.node.ObjectNode out = JSON.createObjectNode();
                out.put("reference", dst.toString()).put("digest", digest).put("seconds", Math.round(seconds * 1000) / 1000.0);
                out.set("layers", progress.layers);
                System.out.println(JSON.writeValueAsString(out));
            } else {
                System.out.printf("pushed %s@%s in %.1f s%n", dst, digest, seconds);
            }
            return 0;
        } finally {
            dev.starling.fuse.MountTable.deleteTree(work);
        }
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    /** One line per layer, and a progress bar while it converts. */
    private static final class LayerProgress implements ImageConverter.Listener {
        private final boolean json;
        final com.fasterxml.jackson.databind.node.ArrayNode layers = JSON.createArrayNode();
        private ProgressBar bar;

        LayerProgress(boolean json) {
            this.json = json;
        }

        @Override
        public void layerStarted(String platform, int index, int count, Descriptor layer) {
            bar = new ProgressBar(String.format("%slayer %d/%d", platform.isEmpty() ? "" : platform + " ", index + 1, count));
        }

        @Override
        public void progress(long done, long total) {
            bar.update(done, total);
        }

        @Override
        public void layerDone(String platform, int index, Descriptor converted, ConvertResult result) {
            bar.close();
            if (json) {
                layers.addObject().put("platform", platform).put("layer", index + 1)
                        .put("digest", converted.digest().toString()).put("size", converted.size())
                        .put("tocDigest", result.tocDigest()).put("diffId", result.diffId())
                        .put("uncompressedSize", result.uncompressedSize());
                return;
            }
            System.out.printf("%slayer %d: %s  %s  toc %s%n", platform.isEmpty() ? "" : platform + " ", index + 1,
                    converted.digest(), Sizes.human(converted.size()), result.tocDigest());
        }
    }
}
