package dev.starling.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** The temporary directories commands work in, removed with everything in them when they end. */
final class WorkDirectory {
    private WorkDirectory() {
    }

    /**
     * Deletes {@code dir}; a mount still under it (one a crashed step left) is detached first, so the
     * walk never deletes through a mount into what it serves.
     */
    static void delete(Path dir) throws IOException {
        Path root = dir.toAbsolutePath().normalize();
        java.util.List<Path> under = dev.starling.fuse.MountTable.read().stream().map(dev.starling.fuse.MountTable.Entry::mountPoint)
                .filter(p -> p.startsWith(root)).sorted(Comparator.reverseOrder()).toList();
        for (Path mount : under) {
            dev.starling.fuse.SystemCommand.run("umount", "-l", "--no-canonicalize", mount.toString());
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
