package dev.starling.fetch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * Directories 0700 and files 0600: what the daemon keeps of images (chunks, TOCs, mounts) is a
 * private image's data, and no other local user reads it through Starling that the registry would
 * not give them.
 */
public final class OwnerOnly {
    private static final FileAttribute<Set<PosixFilePermission>> DIRECTORY =
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
    private static final FileAttribute<Set<PosixFilePermission>> FILE =
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"));

    private OwnerOnly() {
    }

    /** {@code dir} and any missing parents, made 0700; {@code dir} itself made 0700 if it was there already. */
    public static Path directories(Path dir) throws IOException {
        Files.createDirectories(dir, DIRECTORY);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        return dir;
    }

    /** {@code dir} and any missing parents, those it creates 0700 (for the write path: no chmod of what exists). */
    public static Path created(Path dir) throws IOException {
        return Files.createDirectories(dir, DIRECTORY);
    }

    /** {@code data} in a new file {@code file}, 0600 from its creation (no moment of wider access). */
    public static void write(Path file, byte[] data) throws IOException {
        Files.deleteIfExists(file);
        Files.createFile(file, FILE);
        Files.write(file, data, StandardOpenOption.TRUNCATE_EXISTING);
    }
}
