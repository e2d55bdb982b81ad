package dev.starling.daemon;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The warm-up reads its own layer through a real mount and leaves neither files nor mounts behind. */
class WarmupTest {
    @TempDir
    Path dir;

    @Test
    void theWarmUpReadsItsLayerBackAndLeavesNothing() throws Exception {
        Path warm = dir.resolve("warmup");
        Files.createDirectories(warm.resolve("round-0/mnt")); // a killed daemon's leftovers do not stop it
        assertTrue(Warmup.run(warm, () -> false), "every file of the warm-up layer read back whole");
        assertFalse(Files.exists(warm), "its directory is gone");
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(dir.toString()), "and so are its mounts");
    }
}
