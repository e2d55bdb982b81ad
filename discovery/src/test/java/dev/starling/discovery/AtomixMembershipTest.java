package dev.starling.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Three members on loopback find each other from a bootstrap list, with chunk addresses and zones, and see one leave. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AtomixMembershipTest {
    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static Set<String> ids(Membership m) {
        return m.members().stream().map(Member::nodeId).collect(Collectors.toSet());
    }

    static void await(java.util.function.BooleanSupplier done, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertTrue(done.getAsBoolean(), what);
    }

    @Test
    void membersFindEachOtherAndALeaverIsGone() throws Exception {
        List<InetSocketAddress> gossip = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            gossip.add(new InetSocketAddress("127.0.0.1", freePort()));
        }
        List<AtomixMembership> nodes = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                Member self = new Member("node-" + i, new InetSocketAddress("127.0.0.1", 7400 + i), i < 2 ? "zone-a" : "zone-b");
                nodes.add(new AtomixMembership("test", self, gossip.get(i), () -> gossip, Duration.ofMillis(500),
                        Duration.ofSeconds(2)).start(Duration.ofSeconds(30)));
            }
            for (AtomixMembership n : nodes) {
                await(() -> ids(n).size() == 3, n.self().nodeId() + " sees all three: " + ids(n));
            }
            Member seen = nodes.get(0).members().stream().filter(m -> m.nodeId().equals("node-2")).findFirst().orElseThrow();
            assertEquals(new InetSocketAddress("127.0.0.1", 7402), seen.chunkAddress(), "its published chunk address");
            assertEquals("zone-b", seen.zone());
            long t0 = System.nanoTime();
            nodes.remove(2).close();
            await(() -> ids(nodes.get(0)).equals(Set.of("node-0", "node-1")), "node-2 is gone: " + ids(nodes.get(0)));
            System.out.printf("membership: a leaving member was gone from the others' view after %.1f s%n",
                    (System.nanoTime() - t0) / 1e9);
        } finally {
            nodes.forEach(AtomixMembership::close);
        }
    }
}
