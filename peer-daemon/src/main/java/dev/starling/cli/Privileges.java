package dev.starling.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Whether this process may mount (FUSE and overlayfs), said before trying rather than as a libfuse error. */
final class Privileges {
    /** CAP_SYS_ADMIN's bit in /proc/self/status CapEff. */
    private static final int CAP_SYS_ADMIN = 21;

    private Privileges() {
    }

    /** Whether {@link #requireMountPrivileges} would pass: for steps that are skipped rather than failed. */
    static boolean canMount() {
        try {
            requireMountPrivileges();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static void requireMountPrivileges() throws IOException {
        if (!hasSysAdmin()) {
            throw new IOException("mounting needs root (or CAP_SYS_ADMIN and access to /dev/fuse); run it with sudo");
        }
        Path fuse = Path.of("/dev/fuse");
        if (!Files.exists(fuse)) {
            throw new IOException("/dev/fuse does not exist: load the fuse module (modprobe fuse), or in a container "
                    + "pass the device (--device /dev/fuse)");
        }
        if (!Files.isReadable(fuse) || !Files.isWritable(fuse)) {
            throw new IOException("/dev/fuse is not readable and writable for this user; mounting needs root "
                    + "(or CAP_SYS_ADMIN and access to /dev/fuse)");
        }
    }

    private static boolean hasSysAdmin() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("CapEff:")) {
                    long caps = Long.parseUnsignedLong(line.substring(7).strip(), 16);
                    return (caps >> CAP_SYS_ADMIN & 1) != 0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux as we know it: let the mount itself say what is wrong
        }
        return true;
    }
}
