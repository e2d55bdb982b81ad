package dev.starling.cli;

import dev.starling.estargz.BlobVerifier;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.EntryType;
import dev.starling.estargz.Paths;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.ReaderLimits;
import dev.starling.estargz.TocEntry;
import dev.starling.estargz.VerificationException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code starling inspect BLOB}: list a blob's TOC, and optionally verify everything. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"List the TOC entries of an eStargz blob, one line each, sorted by name:",
                "  TYPE MODE(octal) UID GID SIZE NAME [-> TARGET]",
                "With --toc-digest, also check the TOC against that digest and every chunk against the TOC;",
                "exit 1 naming each entry that does not match."})
final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "BLOB", description = "eStargz, stargz or zstd:chunked blob")
    Path blob;

    @Option(names = "--toc-digest", paramLabel = "sha256:...",
            description = {"expected TOC digest: the layer's", "containerd.io/snapshot/stargz/toc.digest annotation"})
    String tocDigest;

    @Option(names = "--verify", description = "verify every chunk even without --toc-digest")
    boolean verify;

    @Override
    public Integer call() throws Exception {
        PrintStream out = System.out;
        if (Files.isDirectory(blob)) {
            throw new IllegalArgumentException(blob + " is a directory; inspect takes an eStargz blob file");
        }
        if (!Files.exists(blob)) {
            throw new NoSuchFileException(blob.toString(), null, ConvertCommand.looksLikeImage(blob.toString())
                    ? "no such file; inspect takes a local blob, not an image reference (fetch a layer with "
                    + "`skopeo copy` or `curl`, or mount the image with `starling mount`)"
                    : "no such file; inspect takes a local eStargz blob");
        }
        try (RangeReader reader = RangeReader.open(blob)) {
            EStargzBlob.RawToc raw = EStargzBlob.readToc(reader, ReaderLimits.DEFAULT);
            List<TocEntry> entries = new ArrayList<>(raw.entries());
            entries.removeIf(e -> e.type() == EntryType.CHUNK);
            entries.sort(Comparator.comparing(e -> Paths.clean(e.name())));
            StringBuilder listing = new StringBuilder();
            for (TocEntry e : entries) {
                listing.append(line(e)).append('\n');
            }
            out.print(listing);
            System.err.printf("%s footer, %d entries, toc digest %s%n", raw.footer().format(), entries.size(),
                    raw.digest());
            if (tocDigest == null && !verify) {
                return 0;
            }
            EStargzBlob opened;
            try {
                opened = EStargzBlob.open(reader, raw, tocDigest, ReaderLimits.DEFAULT);
            } catch (VerificationException e) {
                System.err.println("starling: " + e.getMessage());
                return 1;
            }
            BlobVerifier.Report report = BlobVerifier.verify(opened);
            for (String problem : report.problems()) {
                System.err.println("starling: " + problem);
            }
            System.err.printf("%s: %d files, %d chunks, %s verified%s%n", report.ok() ? "OK" : "FAILED",
                    report.files(), report.chunks(), Sizes.human(report.bytes()),
                    report.ok() ? "" : "; " + report.problems().size() + " problem(s)");
            return report.ok() ? 0 : 1;
        }
    }

    static String line(TocEntry e) {
        String name = Paths.clean(e.name());
        String target = switch (e.type()) {
            case SYMLINK -> " -> " + e.linkName();
            case HARDLINK -> " -> " + Paths.clean(e.linkName());
            default -> "";
        };
        return String.format("%s %04o %d %d %d %s%s", e.type().json, e.mode() & 07777, e.uid(), e.gid(), e.size(),
                name.isEmpty() ? "." : name, target);
    }
}
