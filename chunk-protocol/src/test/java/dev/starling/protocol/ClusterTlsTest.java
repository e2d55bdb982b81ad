package dev.starling.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Mutual TLS with a cluster CA, certificates made with keytool: members are served, strangers are not. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ClusterTlsTest {
    static final char[] PASS = "changeit".toCharArray();

    @TempDir
    Path dir;

    void ca(String ca) throws Exception {
        new ClusterCertificates(dir).ca(ca);
    }

    void node(String node, String ca) throws Exception {
        new ClusterCertificates(dir).node(node, ca);
    }

    @Test
    void membersOfTheCaAreServedAndAStrangerIsNot() throws Exception {
        ca("cluster-ca");
        ca("other-ca");
        node("server", "cluster-ca");
        node("member", "cluster-ca");
        node("stranger", "other-ca");
        Path trust = dir.resolve("cluster-ca-trust.p12");
        ChunkProvider provider = (peer, request) -> CompletableFuture.completedFuture(List.of(new byte[] {7}));
        try (PeerServer server = PeerServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                PeerServer.Settings.defaults("c", "server").withTls(ClusterTls.server(dir.resolve("server.p12"), PASS, trust)),
                provider)) {
            Frame.Locator where = new Frame.Locator("r", "a", "sha256:" + "ab".repeat(32), "sha256:" + "cd".repeat(32), false, false, 0, 1);
            try (PeerClient member = PeerClient.connect(server.address(), "c", "member", Duration.ofSeconds(5),
                    ClusterTls.client(dir.resolve("member.p12"), PASS, trust), FrameCodec.DEFAULT_MAX_FRAME)) {
                assertArrayEquals(new byte[] {7}, member.request(where, List.of(new Frame.ChunkRef(0, 1, 0, 1, new byte[32])),
                        Duration.ofSeconds(5)).get().getFirst());
            }
            assertThrows(PeerException.class, () -> PeerClient.connect(server.address(), "c", "stranger", Duration.ofSeconds(5),
                    ClusterTls.client(dir.resolve("stranger.p12"), PASS, trust), // it trusts the server; the server does not trust it
                    FrameCodec.DEFAULT_MAX_FRAME).close(), "a certificate of another CA is refused");
            assertThrows(PeerException.class, () -> PeerClient.connect(server.address(), "c", "plain", Duration.ofSeconds(5),
                    null, FrameCodec.DEFAULT_MAX_FRAME).close(), "so is a peer without TLS");
        }
    }
}
