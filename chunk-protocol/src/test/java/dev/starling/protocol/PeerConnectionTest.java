package dev.starling.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A real server and real clients on loopback sockets: multiplexing, limits, refusals, garbage, death. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PeerConnectionTest {
    static final Duration T = Duration.ofSeconds(5);
    static final InetSocketAddress ANY = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
    static final Frame.Locator WHERE = new Frame.Locator("registry.example.com", "app", "sha256:" + "ab".repeat(32), "sha256:" + "cd".repeat(32), false, false, 0, 100);

    /** Serves chunk i of any request as the bytes of its size filled with its inner offset; size 13 is a miss. */
    static final ChunkProvider FILLER = (peer, request) -> CompletableFuture.supplyAsync(() -> {
        List<byte[]> out = new ArrayList<>();
        for (Frame.ChunkRef c : request.chunks()) {
            byte[] b = new byte[c.size()];
            java.util.Arrays.fill(b, (byte) c.innerOffset());
            out.add(c.size() == 13 ? null : b);
        }
        return out;
    });

    static Frame.ChunkRef chunk(int inner, int size) {
        return new Frame.ChunkRef(0, 100, inner, size, new byte[32]);
    }

    static PeerClient client(PeerServer server, String cluster) throws PeerException {
        return PeerClient.connect(server.address(), cluster, "client", T, null, FrameCodec.DEFAULT_MAX_FRAME);
    }

    @Test
    void manyRequestsShareOneConnectionAndEachGetsItsOwnAnswers() throws Exception {
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server").withMaxInFlight(1000), FILLER);
             PeerClient client = client(server, "c1")) {
            List<CompletableFuture<List<byte[]>>> answers = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                answers.add(client.request(WHERE, List.of(chunk(i % 100, 100 + i), chunk(7, 13)), T));
            }
            for (int i = 0; i < 300; i++) {
                List<byte[]> got = answers.get(i).get(10, TimeUnit.SECONDS);
                assertEquals(100 + i, got.get(0).length);
                assertEquals((byte) (i % 100), got.get(0)[0]);
                assertNull(got.get(1), "a miss");
            }
            byte[] big = client.request(WHERE, List.of(chunk(1, 4 << 20)), T).get().getFirst();
            assertEquals(4 << 20, big.length);
            assertTrue(server.bytesServed() > 4 << 20);
        }
    }

    @Test
    void theUploadCapHoldsWhatANodeSendsToItsPeers() throws Exception {
        long cap = 2L << 20; // 2 MiB/s
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server").withUploadBytesPerSecond(cap),
                FILLER); PeerClient client = client(server, "c1")) {
            long t0 = System.nanoTime();
            List<CompletableFuture<List<byte[]>>> answers = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                answers.add(client.request(WHERE, List.of(chunk(i, 1 << 20)), Duration.ofSeconds(30)));
            }
            for (CompletableFuture<List<byte[]>> a : answers) {
                assertEquals(1 << 20, a.get(30, TimeUnit.SECONDS).getFirst().length);
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            // 8 MiB at 2 MiB/s: about 4 s, whatever the machine (an uncapped loopback sends it in milliseconds)
            assertTrue(seconds >= 2.5, "8 MiB went out in " + seconds + " s under a 2 MiB/s cap");
        }
    }

    @Test
    void anotherClusterOrVersionIsRefusedAtTheHandshake() throws Exception {
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server"), FILLER)) {
            PeerException.Refused e = assertThrows(PeerException.Refused.class, () -> client(server, "other-cluster"));
            assertEquals(Frame.ErrorCode.REFUSED, e.code());
            assertTrue(e.getMessage().contains("cluster \"other-cluster\" is not this node's"), e.getMessage());
            assertEquals(1, server.refusedConnections());
        }
    }

    @Test
    void garbageOnASocketClosesThatConnectionAndTheServerGoesOn() throws Exception {
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server")
                .withIdleTimeout(Duration.ofMillis(500)), FILLER)) {
            Random random = new Random(5);
            for (int i = 0; i < 20; i++) {
                try (Socket s = new Socket(server.address().getAddress(), server.address().getPort())) {
                    byte[] junk = new byte[1 + random.nextInt(5000)];
                    random.nextBytes(junk);
                    if (i % 2 == 0) {
                        junk[0] = 0; // a plausible length, then junk
                    }
                    OutputStream out = s.getOutputStream();
                    out.write(junk);
                    out.flush();
                    s.setSoTimeout(5000);
                    try {
                        while (s.getInputStream().read() >= 0) {
                            // the server answers (a refusal) or closes; either ends here
                        }
                    } catch (java.net.SocketTimeoutException stillOpen) {
                        throw new AssertionError("a connection that sent junk was left open past the idle timeout");
                    } catch (java.net.SocketException reset) {
                        // closed on us
                    }
                }
            }
            try (PeerClient good = client(server, "c1")) {
                assertArrayEquals(new byte[] {3, 3}, good.request(WHERE, List.of(chunk(3, 2)), T).get().getFirst(),
                        "a well-behaved peer is still served");
            }
            assertTrue(server.refusedConnections() > 0, "junk that is not the protocol is refused (the rest ends at the idle timeout): " + server.refusedConnections());
        }
    }

    @Test
    void aConnectionAtItsLimitIsToldBusyNotQueued() throws Exception {
        CompletableFuture<List<byte[]>> never = new CompletableFuture<>();
        ChunkProvider stuck = (peer, request) -> never;
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server").withMaxInFlight(2), stuck);
             PeerClient client = client(server, "c1")) {
            client.request(WHERE, List.of(chunk(1, 1)), T);
            client.request(WHERE, List.of(chunk(1, 1)), T);
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> client.request(WHERE, List.of(chunk(1, 1)), T).get(5, TimeUnit.SECONDS));
            assertInstanceOf(PeerException.Busy.class, e.getCause());
        }
    }

    @Test
    void aRefusalByTheProviderReachesTheRequesterAsItsCode() throws Exception {
        ChunkProvider strict = (peer, request) -> CompletableFuture.failedFuture(new PeerException.Refused("server",
                Frame.ErrorCode.REGISTRY_NOT_ALLOWED, request.locator().registry() + " is not an allowed registry"));
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server"), strict);
             PeerClient client = client(server, "c1")) {
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> client.request(WHERE, List.of(chunk(1, 1)), T).get(5, TimeUnit.SECONDS));
            PeerException.Refused refused = assertInstanceOf(PeerException.Refused.class, e.getCause());
            assertEquals(Frame.ErrorCode.REGISTRY_NOT_ALLOWED, refused.code());
            assertTrue(refused.getMessage().contains("registry.example.com is not an allowed registry"));
        }
    }

    @Test
    void aDeadOrSilentPeerCostsOneTimeoutNotAHang() throws Exception {
        CompletableFuture<List<byte[]>> never = new CompletableFuture<>();
        PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server"), (peer, request) -> never);
        PeerClient client = client(server, "c1");
        long t0 = System.nanoTime();
        ExecutionException slow = assertThrows(ExecutionException.class,
                () -> client.request(WHERE, List.of(chunk(1, 1)), Duration.ofMillis(300)).get(5, TimeUnit.SECONDS));
        assertTrue((System.nanoTime() - t0) / 1e6 < 2000, "one timeout");
        assertTrue(slow.getCause().getMessage().contains("did not answer within 300 ms"));
        CompletableFuture<List<byte[]>> pending = client.request(WHERE, List.of(chunk(1, 1)), T);
        server.close(); // the peer dies with a request in flight
        ExecutionException dead = assertThrows(ExecutionException.class, () -> pending.get(5, TimeUnit.SECONDS));
        assertInstanceOf(PeerException.Closed.class, dead.getCause());
        assertTrue(!client.isOpen());
        client.close();
    }

    @Test
    void aPeerThatAnswersWithMoreBytesThanItsChunkBreaksTheProtocol() throws Exception {
        ChunkProvider liar = (peer, request) -> CompletableFuture.completedFuture(List.of(new byte[8 << 20]));
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server"), liar);
             PeerClient client = client(server, "c1")) {
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> client.request(WHERE, List.of(chunk(0, 4096)), T).get(5, TimeUnit.SECONDS));
            assertInstanceOf(PeerException.Violation.class, e.getCause(), "a violation, not a peer that could not serve");
            assertTrue(e.getCause().getMessage().contains("a DATA frame of 8388608 bytes for a chunk of at most 4096 bytes"),
                    e.getCause().getMessage());
        }
    }

    /** Reads until the server closes the socket (true) or {@code millis} pass (false). */
    static boolean closedWithin(Socket s, int millis) throws java.io.IOException {
        s.setSoTimeout(millis);
        try {
            while (s.getInputStream().read() >= 0) {
                // an ERROR frame may come first
            }
            return true;
        } catch (java.net.SocketTimeoutException stillOpen) {
            return false;
        } catch (java.net.SocketException reset) {
            return true;
        }
    }

    @Test
    void slowAndSilentConnectionsAreClosedAndOneAddressCannotHoldManyOpen() throws Exception {
        PeerServer.Settings settings = PeerServer.Settings.defaults("c1", "server")
                .withDeadlines(Duration.ofMillis(2500), Duration.ofMillis(500)).withConnectionLimits(4, 100);
        try (PeerServer server = PeerServer.start(ANY, settings, FILLER)) {
            List<Socket> sockets = new ArrayList<>();
            try {
                for (int i = 0; i < 10; i++) {
                    sockets.add(new Socket(server.address().getAddress(), server.address().getPort()));
                }
                Thread.sleep(200);
                List<Socket> open = new ArrayList<>();
                for (Socket s : sockets) {
                    if (!closedWithin(s, 100)) {
                        open.add(s);
                    }
                }
                assertEquals(4, open.size(), "past 4 connections from one address, the next are closed at once");
                for (Socket s : open) {
                    assertTrue(closedWithin(s, 4000), "a connection that never says HELLO is closed");
                }
            } finally {
                for (Socket s : sockets) {
                    s.close();
                }
            }
            try (Socket slow = new Socket(server.address().getAddress(), server.address().getPort())) {
                OutputStream out = slow.getOutputStream();
                ByteBuf hello = FrameCodec.Encoder.encode(io.netty.buffer.ByteBufAllocator.DEFAULT, new Frame.Hello(Frame.VERSION, "c1", "slow"));
                byte[] b = new byte[hello.readableBytes()];
                hello.readBytes(b);
                hello.release();
                out.write(b, 0, 3); // a byte now and then: the frame never completes
                out.flush();
                long t0 = System.nanoTime();
                for (int i = 3; i < b.length - 1 && !slow.isClosed(); i++) {
                    Thread.sleep(200);
                    try {
                        out.write(b[i]);
                        out.flush();
                    } catch (java.net.SocketException closedByServer) {
                        break;
                    }
                }
                assertTrue(closedWithin(slow, 3000), "a frame trickled in a byte at a time is cut off");
                assertTrue((System.nanoTime() - t0) / 1e6 < 3000, "at its deadline");
            }
            assertTrue(server.refusedConnections() >= 8, "and each is counted: " + server.refusedConnections());
        }
    }

    @Test
    void aPeerOverItsRequestRateIsToldToWait() throws Exception {
        long[] now = {0};
        PeerServer.Settings settings = PeerServer.Settings.defaults("c1", "server").withPeerRates(10, 0).withMaxInFlight(1000);
        try (PeerServer server = PeerServer.start(ANY, settings, FILLER, () -> now[0]);
             PeerClient client = client(server, "c1")) {
            int busy = 0;
            for (int i = 0; i < 15; i++) {
                try {
                    client.request(WHERE, List.of(chunk(1, 10)), T).get(5, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    assertInstanceOf(PeerException.Busy.class, e.getCause());
                    busy++;
                }
            }
            assertEquals(5, busy, "10 a second are served, the 5 past them answered BUSY");
            assertEquals(5, server.refusedRequests());
            now[0] += 1_000_000_000L; // a second later the bucket is full again
            assertEquals(1, client.request(WHERE, List.of(chunk(1, 10)), T).get(5, TimeUnit.SECONDS).size());
        }
    }

    @Test
    void aPeerThatKeepsSendingIsWaitedForPastTheTimeoutAndASilentOneIsNot() throws Exception {
        // 2 MiB through a 512 KiB/s upload cap: 4 s of answer against a 1 s timeout, never a second without bytes
        try (PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server")
                .withUploadBytesPerSecond(512 << 10), FILLER);
             PeerClient client = client(server, "c1")) {
            List<Frame.ChunkRef> eight = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                eight.add(chunk(i, 256 << 10));
            }
            long t0 = System.nanoTime();
            List<byte[]> got = client.request(WHERE, eight, Duration.ofSeconds(1)).get(30, TimeUnit.SECONDS);
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertEquals(8, got.size());
            assertTrue(seconds > 2, "it took the link's time (" + seconds + " s), and the read did not fail at 1 s");
        }
    }

    @Test
    void aPeerStillFillingARequestIsWaitedForPastTheTimeout() throws Exception {
        // the owner takes 2.5 s to fill from a slow registry; the requester's timeout of silence is 1 s
        PeerServer server = PeerServer.start(ANY, PeerServer.Settings.defaults("c1", "server"), (peer, request) ->
                CompletableFuture.supplyAsync(() -> List.of(new byte[] {42}),
                        CompletableFuture.delayedExecutor(2500, TimeUnit.MILLISECONDS)));
        try (server; PeerClient client = client(server, "c1")) {
            long t0 = System.nanoTime();
            List<byte[]> got = client.request(WHERE, List.of(chunk(1, 1)), Duration.ofSeconds(1)).get(10, TimeUnit.SECONDS);
            assertEquals(42, got.getFirst()[0]);
            assertTrue((System.nanoTime() - t0) / 1e9 > 2, "it was waited for, told twice a second that it is being worked on");
        }
    }
}
