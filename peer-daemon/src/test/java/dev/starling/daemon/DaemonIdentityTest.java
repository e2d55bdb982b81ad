package dev.starling.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node names itself (`--advertise`, apart from where it listens), and one shared configuration
 * cannot make two daemons fight over a node: a second daemon on the same root or the same
 * containerd socket refuses to start and says who has it; a taken address names its option.
 * Real daemon processes, as an operator would start them.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class DaemonIdentityTest {
    @TempDir
    Path dir;

    @Test
    void aNodeListeningOnEveryAddressAdvertisesTheOneItIsReachedAtAndTheOthersKnowItByIt() throws Exception {
        int a = DaemonConfig.freePortPair(), b = DaemonConfig.freePortPair();
        String join = "127.0.0.1:" + a + ",127.0.0.1:" + b;
        try (DaemonProcess first = DaemonProcess.start(dir, "a", List.of("--peer-listen", "0.0.0.0:" + a, "--join", join,
                "--cluster-id", "id", "--no-store"));
             DaemonProcess second = DaemonProcess.start(dir, "b", List.of("--peer-listen", "127.0.0.1:" + b,
                     "--advertise", "127.0.0.1:" + b, "--join", join, "--cluster-id", "id", "--no-store"))) {
            first.awaitReady();
            second.awaitReady();
            assertEquals("127.0.0.1:" + a, first.status().path("node").asText(),
                    "a wildcard listener advertises the address its route to the peers leaves from");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (second.status().path("members").size() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertEquals(List.of("127.0.0.1:" + a, "127.0.0.1:" + b).stream().sorted().toList(),
                    java.util.stream.StreamSupport.stream(second.status().path("members").spliterator(), false)
                            .map(n -> n.asText()).sorted().toList(), "the others know it by the address it advertises");
        }
    }

    @Test
    void aLoopbackAddressAdvertisedToPeersElsewhereIsRefusedWithTheReason() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir, "lonely", List.of("--peer-listen", "127.0.0.1:" + DaemonConfig.freePortPair(),
                "--join", "192.0.2.10:7400,192.0.2.11:7400", "--no-store"))) {
            assertNotEquals(0, d.awaitExit(60));
            assertTrue(d.log().contains("a loopback address, to peers such as 192.0.2.10:7400 that cannot reach it there: give "
                    + "--advertise HOST:PORT"), d.log());
        }
    }

    @Test
    void aSecondDaemonOnTheSameRootSocketOrAddressRefusesAndSaysWhoHasIt() throws Exception {
        int port = DaemonConfig.freePortPair();
        Path containerd = dir.resolve("containerd.sock");
        try (DaemonProcess first = DaemonProcess.start(dir, "node", List.of("--peer-listen", "127.0.0.1:" + port, "--no-store",
                "--containerd-socket", containerd.toString()))) {
            first.awaitReady();
            long pid = first.status().path("pid").asLong();
            // the same root (the same configuration started twice)
            Path elsewhere = java.nio.file.Files.createDirectories(dir.resolve("elsewhere"));
            java.nio.file.Files.createSymbolicLink(elsewhere.resolve("node"), first.root()); // the same root by another name
            try (DaemonProcess again = DaemonProcess.start(elsewhere, "node", List.of(
                    "--peer-listen", "127.0.0.1:" + DaemonConfig.freePortPair(), "--no-store"))) {
                assertNotEquals(0, again.awaitExit(60));
                assertTrue(again.log().contains("another starling daemon runs on --root " + elsewhere.resolve("node") + " (pid "
                        + pid + ")"), again.log());
            }
            // another root, the same containerd socket
            try (DaemonProcess thief = DaemonProcess.start(dir, "thief", List.of("--peer-listen",
                    "127.0.0.1:" + DaemonConfig.freePortPair(), "--no-store", "--containerd-socket", containerd.toString()))) {
                assertNotEquals(0, thief.awaitExit(60));
                assertTrue(thief.log().contains("a live server already serves " + containerd), thief.log());
            }
            // another root, the same peer address
            try (DaemonProcess twin = DaemonProcess.start(dir, "twin", List.of("--peer-listen", "127.0.0.1:" + port, "--no-store"))) {
                assertNotEquals(0, twin.awaitExit(60));
                assertTrue(twin.log().contains("--peer-listen 127.0.0.1:" + port + ": address already in use"), twin.log());
            }
            assertTrue(first.isAlive(), "and the first daemon serves on: " + first.log());
            assertEquals(pid, first.status().path("pid").asLong());
        }
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             DaemonProcess metrics = DaemonProcess.start(dir, "metrics", List.of("--peer-listen",
                     "127.0.0.1:" + DaemonConfig.freePortPair(), "--no-store", "--metrics-listen", "127.0.0.1:" + taken.getLocalPort()))) {
            assertNotEquals(0, metrics.awaitExit(60));
            assertTrue(metrics.log().contains("--metrics-listen 127.0.0.1:" + taken.getLocalPort() + ": address already in use"),
                    metrics.log());
        }
    }
}
