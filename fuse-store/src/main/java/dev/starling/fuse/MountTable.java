package dev.starling.fuse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * This process's view of the mount table ({@code /proc/self/mountinfo}), and the clean-up of mounts
 * a killed daemon left behind: its FUSE mounts answer "Transport endpoint is not connected", and
 * so does an overlay stacked on them.
 */
public final class MountTable {
    /** Every layer mount is FUSE with this subtype, so the mount table tells them apart. */
    static final String LAYER_SUBTYPE = "estargz";
    public static final String LAYER_FS_TYPE = "fuse." + LAYER_SUBTYPE;

    /**
     * One line of mountinfo: where, the device ({@code major:minor}, which names the mount's
     * {@code /sys/class/bdi} entry), what type, the source (FUSE fsname, or mount's source argument),
     * and the per-mount options ({@code ro}, {@code nosuid}, {@code nodev}, ...).
     */
    public record Entry(Path mountPoint, String device, String fsType, String source, List<String> options) {
    }

    private MountTable() {
    }

    /** Every mount, in mount order (a later entry at the same point is stacked on the earlier). */
    public static List<Entry> read() throws IOException {
        List<Entry> entries = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
            String[] f = line.split(" ");
            int separator = List.of(f).indexOf("-");
            if (f.length > 4 && separator > 4 && separator + 2 < f.length) {
                entries.add(new Entry(Path.of(unescape(f[4])), f[2], f[separator + 1], unescape(f[separator + 2]),
                        List.of(f[5].split(","))));
            }
        }
        return entries;
    }

    /** The topmost mount at {@code path}, if it is a mount point. */
    public static Optional<Entry> at(Path path) throws IOException {
        Path p = path.toAbsolutePath().normalize();
        Entry top = null;
        for (Entry e : read()) {
            if (e.mountPoint().equals(p)) {
                top = e;
            }
        }
        return Optional.ofNullable(top);
    }

    /** Whether {@code path} exists but cannot be looked at: a mount whose daemon died. */
    public static boolean isDead(Path path) {
        // Listing, not stat: the kernel answers a stat from the attributes it caches (a day, for a
        // layer), dead daemon or not, while opening a directory always asks the file system.
        try (java.nio.file.DirectoryStream<Path> entries = Files.newDirectoryStream(path)) {
            entries.iterator().hasNext();
            return false;
        } catch (NoSuchFileException | java.nio.file.NotDirectoryException absent) {
            return false;
        } catch (IOException | java.nio.file.DirectoryIteratorException notConnected) {
            return true;
        }
    }

    /**
     * Deletes {@code dir} and everything in it; a mount still under it (one a crashed step or a
     * killed process left) is detached first, so the walk never deletes through a mount into what
     * it serves.
     */
    public static void deleteTree(Path dir) throws IOException {
        Path root = dir.toAbsolutePath().normalize();
        List<Path> under = read().stream().map(Entry::mountPoint).filter(p -> p.startsWith(root))
                .sorted(java.util.Comparator.reverseOrder()).toList();
        for (Path mount : under) {
            SystemCommand.run("umount", "-l", "--no-canonicalize", mount.toString());
        }
        try (java.util.stream.Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Lazily unmounts every layer mount whose daemon died; returns their mount points. */
    public static List<Path> clearDeadLayerMounts() throws IOException {
        List<Path> cleared = new ArrayList<>();
        for (Entry e : read()) {
            if (e.fsType().equals(LAYER_FS_TYPE) && isDead(e.mountPoint())) {
                lazyUnmount(e.mountPoint());
                cleared.add(e.mountPoint());
            }
        }
        return cleared;
    }

    /** Detaches a FUSE mount now; it goes away for good once nothing holds files open in it. */
    static void lazyUnmount(Path mountPoint) {
        try {
            SystemCommand.run("fusermount3", "-u", "-z", mountPoint.toString());
        } catch (IOException notUnmounted) {
            // what follows (a mount, a close) reports the mount point's state
        }
    }

    /** mountinfo escapes space, tab, newline and backslash as octal ({@code \040}). */
    private static String unescape(String field) {
        if (field.indexOf('\\') < 0) {
            return field;
        }
        StringBuilder out = new StringBuilder(field.length());
        for (int i = 0; i < field.length(); i++) {
            char c = field.charAt(i);
            if (c == '\\' && isOctal(field, i + 1)) {
                out.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    private static boolean isOctal(String s, int from) {
        if (from + 3 > s.length()) {
            return false;
        }
        for (int i = from; i < from + 3; i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '7') {
                return false;
            }
        }
        return true;
    }
}
