package dev.starling.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Faults a real registry never makes, from a scripted server: each gets a retry or a clear error,
 * and nothing hangs.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FaultTest {
    static final String DIGEST = Manifest.sha256("hello world".getBytes());

    MockWebServer server;
    RegistryClient client;
    ImageReference repo;

    @BeforeEach
    void start() throws IOException {
        server = new MockWebServer();
        server.start(InetAddress.getLoopbackAddress(), 0);
        client = new RegistryClient(RegistryClient.Settings.defaults()
                .withRetries(3, Duration.ofMillis(10), Duration.ofMillis(100))
                .withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(10)));
        repo = ImageReference.parse("127.0.0.1:" + server.getPort() + "/fault/app:v1");
    }

    @AfterEach
    void stop() {
        client.close();
        server.close();
    }

    private static MockResponse.Builder ok(String body) {
        return new MockResponse.Builder().code(200).body(body);
    }

    @Test
    void tooManyRequestsIsRetriedAfterRetryAfter() throws Exception {
        server.enqueue(new MockResponse.Builder().code(429).addHeader("Retry-After", "1").build());
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 6-10/11").body("world").build());
        long t0 = System.nanoTime();
        assertArrayEquals("world".getBytes(), client.readBlob(repo, DIGEST, 6, 5));
        assertTrue(System.nanoTime() - t0 >= 900_000_000L, "waited for Retry-After");
        assertEquals(2, server.getRequestCount());
    }

    @Test
    void serverErrorsAreRetriedThenReportedWithTheirCount() {
        for (int i = 0; i < 4; i++) {
            server.enqueue(new MockResponse.Builder().code(503).body("{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"down\"}]}").build());
        }
        RegistryException e = assertThrows(RegistryException.class, () -> client.readBlob(repo, DIGEST, 0, 5));
        assertEquals(503, e.status());
        assertTrue(e.getMessage().contains("UNAVAILABLE: down"), e.getMessage());
        assertEquals(4, server.getRequestCount(), "first attempt plus 3 retries");
    }

    @Test
    void notImplementedIsNotRetried() {
        server.enqueue(new MockResponse.Builder().code(501).build());
        assertThrows(RegistryException.class, () -> client.readBlob(repo, DIGEST, 0, 5));
        assertEquals(1, server.getRequestCount());
    }

    @Test
    void wrongContentRangeIsAnError() {
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
        RangeMismatchException e = assertThrows(RangeMismatchException.class, () -> client.readBlob(repo, DIGEST, 6, 5));
        assertTrue(e.getMessage().contains("sent bytes 0-4/11"), e.getMessage());
    }

    @Test
    void aBodyThatKeepsFlowingIsWaitedForPastTheRequestTimeoutAndOneThatStopsIsNot() throws Exception {
        // 40 bytes, 4 every 400 ms: 4 s in all against a 2 s request timeout, never 2 s without a byte
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-39/40")
                .body(new okio.Buffer().write(new byte[40])).throttleBody(4, 400, TimeUnit.MILLISECONDS).build());
        long t0 = System.nanoTime();
        assertEquals(40, client.readBlob(repo, DIGEST, 0, 40).length, "a saturated registry is slow, not dead");
        assertTrue((System.nanoTime() - t0) / 1e9 > 3, "it took the body's time");
        // headers, then silence for longer than the request timeout: that attempt fails (and is retried)
        for (int i = 0; i < 4; i++) {
            server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-39/40")
                    .body(new okio.Buffer().write(new byte[40])).bodyDelay(3, TimeUnit.SECONDS).build());
        }
        t0 = System.nanoTime();
        assertThrows(IOException.class, () -> client.readBlob(repo, DIGEST, 0, 40));
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(seconds >= 2 && seconds < 10, "each silent attempt cut at the 2 s request timeout: " + seconds + " s");
    }

    @Test
    void connectionCutInTheBodyIsAnErrorNotShortData() {
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-99999/100000")
                .body(new okio.Buffer().write(new byte[100_000])).onResponseBody(new SocketEffect.CloseSocket()).build());
        IOException e = assertThrows(IOException.class, () -> client.readBlob(repo, DIGEST, 0, 100_000));
        assertTrue(e.getMessage() != null, String.valueOf(e));
    }

    @Test
    void blobThatDoesNotMatchItsDigestIsRefused() {
        server.enqueue(ok("hello mars!").build());
        ContentMismatchException e = assertThrows(ContentMismatchException.class,
                () -> client.fetchBlob(repo, DIGEST, new ByteArrayOutputStream()));
        assertTrue(e.getMessage().contains("served wrong bytes"), e.getMessage());
    }

    @Test
    void manifestThatDoesNotMatchThePinnedDigestIsRefused() {
        server.enqueue(ok("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_INDEX + "\",\"manifests\":[]}")
                .addHeader("Content-Type", MediaTypes.OCI_INDEX).build());
        ContentMismatchException e = assertThrows(ContentMismatchException.class,
                () -> client.manifest(repo.withDigest("sha256:" + "ab".repeat(32))));
        assertTrue(e.getMessage().contains("other bytes than the reference pins"), e.getMessage());
    }

    @Test
    void redirectIsFollowedOnceWithoutOurCredentials() throws Exception {
        try (MockWebServer storage = new MockWebServer()) {
            storage.start(InetAddress.getLoopbackAddress(), 0);
            storage.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
            server.enqueue(new MockResponse.Builder().code(401)
                    .addHeader("WWW-Authenticate", "Basic realm=\"test\"").build());
            server.enqueue(new MockResponse.Builder().code(307)
                    .addHeader("Location", storage.url("/bucket/blob?X-Signature=abc")).build());
            try (RegistryClient authed = new RegistryClient(RegistryClient.Settings.defaults()
                    .withCredentials(CredentialProvider.of(repo.registry(), Credentials.basic("u", "p"))))) {
                assertArrayEquals("hello".getBytes(), authed.readBlob(repo, DIGEST, 0, 5));
            }
            server.takeRequest();
            RecordedRequest withAuth = server.takeRequest();
            assertTrue(withAuth.getHeaders().get("Authorization").startsWith("Basic "));
            RecordedRequest atStorage = storage.takeRequest();
            assertNull(atStorage.getHeaders().get("Authorization"), "credentials never go to the redirect target");
            assertEquals("bytes=0-4", atStorage.getHeaders().get("Range"));
        }
    }

    @Test
    void bearerChallengeFetchesAScopedToken() throws Exception {
        server.enqueue(new MockResponse.Builder().code(401).addHeader("WWW-Authenticate",
                "Bearer realm=\"" + server.url("/token") + "\",service=\"test-registry\",scope=\"repository:fault/app:pull\"").build());
        server.enqueue(ok("{\"token\":\"t0k3n\",\"expires_in\":300}").build());
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 6-10/11").body("world").build());
        assertArrayEquals("hello".getBytes(), client.readBlob(repo, DIGEST, 0, 5));
        assertArrayEquals("world".getBytes(), client.readBlob(repo, DIGEST, 6, 5));
        server.takeRequest();
        RecordedRequest token = server.takeRequest();
        assertEquals("test-registry", token.getUrl().queryParameter("service"));
        assertEquals("repository:fault/app:pull", token.getUrl().queryParameter("scope"));
        assertEquals("Bearer t0k3n", server.takeRequest().getHeaders().get("Authorization"));
        assertEquals("Bearer t0k3n", server.takeRequest().getHeaders().get("Authorization"), "token reused");
        assertEquals(4, server.getRequestCount());
    }

    @Test
    void deadRegistryFailsFastWithTheAddress() throws Exception {
        int port = server.getPort();
        server.close();
        long t0 = System.nanoTime();
        RegistryException e = assertThrows(RegistryException.class, () -> client.readBlob(repo, DIGEST, 0, 5));
        assertTrue(e.getMessage().contains("127.0.0.1:" + port), e.getMessage());
        assertTrue(e.getMessage().contains("4 attempt"), e.getMessage());
        assertTrue(System.nanoTime() - t0 < 10_000_000_000L);
    }

    @Test
    void multiRangeRefusedWith400FallsBackToOneSupersetRange() throws Exception {
        server.enqueue(new MockResponse.Builder().code(400).body("multi-range not supported").build());
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-10/11")
                .body("hello world").build());
        java.util.List<byte[]> parts = client.readBlobRanges(repo, DIGEST,
                java.util.List.of(new ByteRange(6, 5), new ByteRange(0, 2)));
        assertArrayEquals("world".getBytes(), parts.get(0));
        assertArrayEquals("he".getBytes(), parts.get(1));
        assertEquals("bytes=0-1,6-10", server.takeRequest().getHeaders().get("Range"));
        assertEquals("bytes=0-10", server.takeRequest().getHeaders().get("Range"));
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {400, 500, 503, 404})
    void aPinnedLocationThatFailsInAnyWayGoesBackToTheRegistryOnce(int status) throws Exception {
        try (MockWebServer storage = new MockWebServer()) {
            storage.start(InetAddress.getLoopbackAddress(), 0);
            server.enqueue(new MockResponse.Builder().code(307).addHeader("Location", storage.url("/signed?v=1")).build());
            storage.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
            for (int i = 0; i < 8; i++) { // the storage keeps failing the old URL; retries must not stay on it
                storage.enqueue(new MockResponse.Builder().code(status).body("signature expired").build());
            }
            assertArrayEquals("hello".getBytes(), client.readBlob(repo, DIGEST, 0, 5));
            server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 6-10/11").body("world").build());
            assertArrayEquals("world".getBytes(), client.readBlob(repo, DIGEST, 6, 5),
                    "the registry itself answers once the pinned location fails with " + status);
            assertEquals(2, server.getRequestCount());
        }
    }

    @Test
    void expiredRedirectIsRefreshedOnceOn403() throws Exception {
        try (MockWebServer storage = new MockWebServer()) {
            storage.start(InetAddress.getLoopbackAddress(), 0);
            server.enqueue(new MockResponse.Builder().code(307).addHeader("Location", storage.url("/signed?v=1")).build());
            storage.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
            storage.enqueue(new MockResponse.Builder().code(403).body("expired").build());
            server.enqueue(new MockResponse.Builder().code(307).addHeader("Location", storage.url("/signed?v=2")).build());
            storage.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 6-10/11").body("world").build());
            assertArrayEquals("hello".getBytes(), client.readBlob(repo, DIGEST, 0, 5));
            assertArrayEquals("world".getBytes(), client.readBlob(repo, DIGEST, 6, 5));
            assertEquals(2, server.getRequestCount(), "the registry is asked again only after the 403");
            assertEquals("/signed?v=1", storage.takeRequest().getTarget());
            assertEquals("/signed?v=1", storage.takeRequest().getTarget(), "the second read reused the location");
            assertEquals("/signed?v=2", storage.takeRequest().getTarget());
        }
    }

    @Test
    void aRegistryThatAcceptsAndNeverAnswersIsSaidAtTheFirstRetryAndBoundedAsAWhole() throws Exception {
        java.util.List<String> said = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(RegistryTransport.class.getName());
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                said.add(r.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        log.addHandler(capture);
        try (java.net.ServerSocket silent = new java.net.ServerSocket(0, 50, InetAddress.getLoopbackAddress());
             RegistryClient impatient = new RegistryClient(RegistryClient.Settings.defaults()
                     .withTimeouts(Duration.ofMillis(800), Duration.ofSeconds(3))
                     .withRetries(50, Duration.ofMillis(10), Duration.ofMillis(50)))) {
            java.util.List<java.net.Socket> held = new java.util.concurrent.CopyOnWriteArrayList<>();
            Thread.ofPlatform().daemon().start(() -> {
                try {
                    while (true) {
                        held.add(silent.accept()); // accepted, never answered
                    }
                } catch (java.io.IOException closed) {
                    // test over
                }
            });
            ImageReference hung = ImageReference.parse("127.0.0.1:" + silent.getLocalPort() + "/fault/app:v1");
            long t0 = System.nanoTime();
            RegistryException e = assertThrows(RegistryException.class, () -> impatient.readBlob(hung, DIGEST, 0, 5));
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertTrue(seconds < 5, "bounded by the 3 s deadline, not attempts x timeout: " + seconds + " s");
            assertTrue(e.getMessage().contains("attempt(s)") || e.getMessage().contains("no answer within"), e.getMessage());
            assertTrue(said.stream().anyMatch(m -> m.contains("retrying up to")), "the first retry is said: " + said);
            for (java.net.Socket s : held) {
                s.close();
            }
        } finally {
            log.removeHandler(capture);
        }
    }

    private RegistryClient withMirror(MockWebServer mirror) {
        return new RegistryClient(RegistryClient.Settings.defaults()
                .withRetries(3, Duration.ofMillis(10), Duration.ofMillis(100))
                .withMirrors(java.util.Map.of(repo.registry(),
                        java.util.List.of(new RegistryClient.Mirror("127.0.0.1:" + mirror.getPort(), true)))));
    }

    @Test
    void mirrorsServeReadsWithTheNamespaceAndNeverSeePushes() throws Exception {
        try (MockWebServer mirror = new MockWebServer()) {
            mirror.start(InetAddress.getLoopbackAddress(), 0);
            mirror.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
            server.enqueue(new MockResponse.Builder().code(201).build());
            try (RegistryClient c = withMirror(mirror)) {
                assertArrayEquals("hello".getBytes(), c.readBlob(repo, DIGEST, 0, 5));
                c.pushManifest(repo, "{}".getBytes(), MediaTypes.OCI_MANIFEST);
            }
            RecordedRequest atMirror = mirror.takeRequest();
            assertEquals(repo.registry(), atMirror.getUrl().queryParameter("ns"));
            assertEquals("/v2/fault/app/blobs/" + DIGEST, atMirror.getUrl().encodedPath());
            assertEquals(1, mirror.getRequestCount());
            assertEquals("PUT", server.takeRequest().getMethod(), "the registry got only the push");
            assertEquals(1, server.getRequestCount());
        }
    }

    @Test
    void failingOrDeadMirrorFallsBackToTheRegistryWithoutRetrying() throws Exception {
        try (MockWebServer mirror = new MockWebServer()) {
            mirror.start(InetAddress.getLoopbackAddress(), 0);
            mirror.enqueue(new MockResponse.Builder().code(500).build());
            server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 6-10/11").body("world").build());
            try (RegistryClient c = withMirror(mirror)) {
                assertArrayEquals("world".getBytes(), c.readBlob(repo, DIGEST, 6, 5));
                assertEquals(1, mirror.getRequestCount(), "a failing mirror is skipped, not retried");
                mirror.close();
                server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
                assertArrayEquals("hello".getBytes(), c.readBlob(repo, DIGEST, 0, 5));
            }
            assertEquals(2, server.getRequestCount());
        }
    }

    @Test
    void identityTokenIsExchangedByPostingTheRefreshToken() throws Exception {
        server.enqueue(new MockResponse.Builder().code(401).addHeader("WWW-Authenticate",
                "Bearer realm=\"" + server.url("/oauth2/token") + "\",service=\"svc\"").build());
        server.enqueue(ok("{\"access_token\":\"from-refresh\",\"expires_in\":60}").build());
        server.enqueue(new MockResponse.Builder().code(206).addHeader("Content-Range", "bytes 0-4/11").body("hello").build());
        try (RegistryClient c = new RegistryClient(RegistryClient.Settings.defaults()
                .withCredentials(CredentialProvider.of(repo.registry(), Credentials.identityToken("refresh-123"))))) {
            assertArrayEquals("hello".getBytes(), c.readBlob(repo, DIGEST, 0, 5));
        }
        server.takeRequest();
        RecordedRequest token = server.takeRequest();
        assertEquals("POST", token.getMethod());
        String form = token.getBody().utf8();
        assertTrue(form.contains("grant_type=refresh_token") && form.contains("refresh_token=refresh-123")
                && form.contains("scope=repository%3Afault%2Fapp%3Apull"), form);
        assertEquals("Bearer from-refresh", server.takeRequest().getHeaders().get("Authorization"));
    }

    @Test
    void plainHttpOnlyForLoopbackAndHostsConfiguredInsecure() {
        RegistryTransport defaults = new RegistryTransport(RegistryClient.Settings.defaults());
        assertEquals("http", defaults.scheme("127.0.0.1:5000"));
        assertEquals("http", defaults.scheme("localhost:5000"));
        assertEquals("http", defaults.scheme("[::1]:5000"));
        assertEquals("https", defaults.scheme("registry.example.com"));
        assertEquals("https", defaults.scheme("10.0.0.5:5000"));
        RegistryTransport insecure = new RegistryTransport(RegistryClient.Settings.defaults()
                .withInsecureHosts(java.util.Set.of("registry.internal:5000")));
        assertEquals("http", insecure.scheme("registry.internal:5000"));
        assertEquals("https", insecure.scheme("registry.internal:443"));
    }
}
