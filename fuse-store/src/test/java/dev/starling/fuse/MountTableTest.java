package dev.starling.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mount table as the kernel writes it, odd names included. */
class MountTableTest {
    @TempDir
    Path dir;

    @Test
    void findsAMountWhosePathHasSpacesAndBackslashes() throws Exception {
        Path odd = Files.createDirectories(dir.resolve("with space\\and\tab"));
        assertTrue(MountTable.at(odd).isEmpty(), "a plain directory is no mount point");
        SystemCommand.run("mount", "-t", "tmpfs", "-o", "size=1m", "starling-table-test", odd.toString());
        try {
            MountTable.Entry e = MountTable.at(odd).orElseThrow(() -> new AssertionError("mount not found"));
            assertEquals(odd, e.mountPoint());
            assertEquals("tmpfs", e.fsType());
            assertEquals("starling-table-test", e.source());
            assertFalse(MountTable.isDead(odd), "a live mount answers");
        } finally {
            SystemCommand.run("umount", odd.toString());
        }
        assertTrue(MountTable.at(odd).isEmpty());
    }
}
