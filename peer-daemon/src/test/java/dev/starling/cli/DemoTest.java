package dev.starling.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's main command, on a small sample so it runs in seconds: every step must succeed. */
class DemoTest {
    @TempDir
    Path dir;

    @Test
    void demoRunsTheWholePathAndReportsLazyFetching() throws Exception {
        Path sample = dir.resolve("sample");
        Files.createDirectories(sample.resolve("sub"));
        byte[] big = new byte[9 * 1024 * 1024];
        new Random(3).nextBytes(big);
        Files.write(sample.resolve("big.bin"), big);
        Files.writeString(sample.resolve("sub/config.txt"), "x=1\n".repeat(50_000));
        for (int i = 0; i < 50; i++) {
            Files.writeString(sample.resolve("sub/f" + i), "file " + i);
        }
        CliTest.Result r = CliTest.starling("demo", "--sample", sample.toString(), "--work-dir",
                dir.resolve("work").toString());
        assertEquals(0, r.code(), r.out() + r.err());
        String out = r.out();
        assertTrue(out.contains("1. local registry at 127.0.0.1:"), out);
        assertTrue(out.matches("(?s).*4\\. open the layer lazily over HTTP: 5\\d nodes indexed.*fetched [0-9.]+ KiB of.*"), out);
        assertTrue(out.contains("5. read opt/jdk/lib/sub/config.txt (195.3 KiB)"), out);
        assertTrue(out.matches("(?s).*6\\. mount .* ready in \\d+ ms.*cat opt/jdk/lib/sub/config.txt through the mount: 195.3 KiB, .* fetched, same bytes.*"), out);
        assertTrue(out.contains("7. verify every chunk over HTTP: OK, 53 files, 55 chunks"), out);
        assertTrue(out.matches("(?s).*8\\. a cluster of 3 daemons on loopback.*node 0: mounted and read.*node 1: mounted and read"
                + ".*node 2: mounted and read.*every node read the same bytes.*"), out);
        java.util.regex.Matcher peers = java.util.regex.Pattern.compile("node \\d: mounted and read in [0-9.]+ s; ([0-9.]+) (B|KiB|MiB) from peers")
                .matcher(out);
        double fromPeers = 0;
        while (peers.find()) {
            fromPeers += Double.parseDouble(peers.group(1));
        }
        assertTrue(fromPeers > 0, "the nodes got bytes from each other: " + out);
    }
}
