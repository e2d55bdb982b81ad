package dev.starling.daemon;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/** Trees the cluster tests convert, and the digest of a tree's files read in order, to compare nodes' reads with. */
final class ClusterFiles {
    private ClusterFiles() {
    }

    /** {@code files} small modules (200 B to 3 KB), 200 per package directory, as a site-packages tree: their relative paths, sorted. */
    static List<Path> smallFiles(Path tree, int files, long seed) throws IOException {
        Random random = new Random(seed);
        for (int i = 0; i < files; i++) {
            Path pkg = Files.createDirectories(tree.resolve("pkg" + i / 200));
            byte[] module = new byte[200 + random.nextInt(3000)];
            random.nextBytes(module);
            Files.write(pkg.resolve("mod" + i + ".py"), module);
        }
        try (Stream<Path> walk = Files.walk(tree)) {
            return walk.filter(Files::isRegularFile).map(tree::relativize).sorted().toList();
        }
    }

    /** The SHA-256 of {@code files} under {@code root}, read in order, in hex. */
    static String digest(Path root, List<Path> files) throws IOException {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        byte[] buffer = new byte[1 << 20];
        for (Path f : files) {
            try (InputStream in = Files.newInputStream(root.resolve(f))) {
                for (int n; (n = in.read(buffer)) > 0; ) {
                    sha.update(buffer, 0, n);
                }
            }
        }
        return HexFormat.of().formatHex(sha.digest());
    }
}
