package dev.starling.peer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.protocol.PeerIdentity;
import java.io.IOException;
import java.net.InetAddress;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The peer-access policy on a fake clock and a scripted registry: what is shared, for how long, and how often the registry is asked. */
class PeerAccessTest {
    static final PeerIdentity PLAIN = new PeerIdentity("n", InetAddress.getLoopbackAddress(), null);
    static final PeerIdentity MEMBER = new PeerIdentity("n", InetAddress.getLoopbackAddress(), "CN=node-1");
    final long[] now = {1_000};
    final Map<String, Object> registry = new HashMap<>(); // blob -> Boolean, or an IOException to throw
    int asked;

    PeerAccess access(PeerAccess.Mode mode) {
        return new PeerAccess(mode, (host, repo, blob) -> {
            asked++;
            Object answer = registry.get(blob);
            if (answer instanceof IOException e) {
                throw e;
            }
            return Boolean.TRUE.equals(answer);
        }, () -> now[0]);
    }

    @Test
    void aPublicBlobIsSharedAndAPrivateOneIsNotAndTheRegistryIsAskedOnceAWhile() {
        PeerAccess access = access(PeerAccess.Mode.PUBLIC);
        registry.put("pub", true);
        registry.put("priv", false);
        for (int i = 0; i < 100; i++) {
            assertTrue(access.mayServe(PLAIN, "r", "a", "pub"));
            assertTrue(access.mayAsk("r", "a", "pub"));
            assertFalse(access.mayServe(MEMBER, "r", "a", "priv"), "not even to a member: public mode shares public blobs only");
            assertFalse(access.mayAsk("r", "a", "priv"));
        }
        assertEquals(2, asked, "one check per blob");
        registry.put("priv", true); // made public: seen once the private answer expires
        now[0] += PeerAccess.PRIVATE_FOR_NANOS;
        assertTrue(access.mayAsk("r", "a", "priv"));
        registry.put("pub", false); // made private: seen once the public answer expires
        now[0] += PeerAccess.PUBLIC_FOR_NANOS;
        assertFalse(access.mayServe(PLAIN, "r", "a", "pub"));
    }

    @Test
    void aRegistryThatCannotAnswerLeavesTheLastAnswerStandingAndNoneMeansPrivate() {
        PeerAccess access = access(PeerAccess.Mode.PUBLIC);
        registry.put("pub", true);
        assertTrue(access.mayAsk("r", "a", "pub"));
        registry.put("pub", new IOException("registry down"));
        registry.put("new", new IOException("registry down"));
        now[0] += PeerAccess.PUBLIC_FOR_NANOS;
        assertTrue(access.mayAsk("r", "a", "pub"), "an outage does not stop peers sharing a public image");
        assertFalse(access.mayAsk("r", "a", "new"), "a blob never answered for is private");
    }

    @Test
    void newBlobDigestsOnEveryRequestCannotTurnIntoAStreamOfRegistryRequests() {
        PeerAccess access = access(PeerAccess.Mode.PUBLIC);
        for (int i = 0; i < 1000; i++) {
            assertFalse(access.mayServe(PLAIN, "r", "a", "sha256:" + i));
        }
        assertEquals(PeerAccess.CHECKS_PER_SECOND, asked, "a second's worth of checks, then none");
        now[0] += 1_000_000_000L;
        access.mayServe(PLAIN, "r", "a", "sha256:x");
        assertEquals(PeerAccess.CHECKS_PER_SECOND + 1, asked);
    }

    @Test
    void clusterModeServesEveryBlobToMembersWhoProvedACertificateAndNothingToOthers() {
        PeerAccess access = access(PeerAccess.Mode.CLUSTER);
        assertTrue(access.mayServe(MEMBER, "r", "a", "priv"));
        assertFalse(access.mayServe(PLAIN, "r", "a", "pub"));
        assertTrue(access.mayAsk("r", "a", "priv"));
        assertEquals(0, asked, "the registry is not asked in cluster mode");
    }
}
