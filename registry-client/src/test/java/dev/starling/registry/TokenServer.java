package dev.starling.registry;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The token half of registry token auth, for tests: checks basic credentials and answers with an
 * RS256 JWT granting the scopes asked for, signed by a key whose self-signed certificate the
 * registry trusts ({@code auth.token.rootcertbundle}); the certificate travels in the {@code x5c} header.
 */
final class TokenServer implements AutoCloseable {
    static final String SERVICE = "starling-test-registry";
    static final String ISSUER = "starling-test-issuer";

    private final HttpServer server;
    private final PrivateKey key;
    private final Certificate certificate;
    final Path certificatePem;
    final AtomicInteger tokensIssued = new AtomicInteger();

    TokenServer(Path dir) throws Exception {
        Path keystore = dir.resolve("token.p12");
        String keytool = Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
        LocalRegistry.run(keytool, "-genkeypair", "-alias", "token", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
                "-dname", "CN=starling-test-token", "-keystore", keystore.toString(), "-storetype", "PKCS12",
                "-storepass", "changeit", "-keypass", "changeit");
        certificatePem = dir.resolve("token.pem");
        LocalRegistry.run(keytool, "-exportcert", "-rfc", "-alias", "token", "-keystore", keystore.toString(), "-storepass",
                "changeit", "-file", certificatePem.toString());
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (var in = Files.newInputStream(keystore)) {
            ks.load(in, "changeit".toCharArray());
        }
        key = (PrivateKey) ks.getKey("token", "changeit".toCharArray());
        certificate = ks.getCertificate("token");
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        server.createContext("/token", exchange -> {
            try (exchange) {
                String auth = exchange.getRequestHeaders().getFirst("Authorization");
                String expected = "Basic " + Base64.getEncoder().encodeToString(
                        (LocalRegistry.USER + ":" + LocalRegistry.PASSWORD).getBytes(StandardCharsets.UTF_8));
                if (!expected.equals(auth)) {
                    exchange.sendResponseHeaders(401, -1);
                    return;
                }
                List<String> scopes = new ArrayList<>();
                String query = exchange.getRequestURI().getRawQuery();
                for (String pair : query == null ? new String[0] : query.split("&")) {
                    String[] kv = pair.split("=", 2);
                    if (kv[0].equals("scope") && kv.length == 2) {
                        scopes.add(URLDecoder.decode(kv[1], StandardCharsets.UTF_8));
                    }
                }
                byte[] body = ("{\"token\":\"" + jwt(scopes) + "\",\"expires_in\":300}").getBytes(StandardCharsets.UTF_8);
                tokensIssued.incrementAndGet();
                exchange.getResponseHeaders().add("Content-Type", "application/json");
                exchange.sendResponseHeaders(200, body.length);
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(body);
                }
            } catch (Exception e) {
                throw new IOException(e);
            }
        });
        server.start();
    }

    String realm() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/token";
    }

    private String jwt(List<String> scopes) throws Exception {
        Base64.Encoder url = Base64.getUrlEncoder().withoutPadding();
        String header = "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5c\":[\""
                + Base64.getEncoder().encodeToString(certificate.getEncoded()) + "\"]}";
        StringBuilder access = new StringBuilder();
        for (String scope : scopes) {
            String[] parts = scope.split(":");
            if (parts.length != 3) {
                continue;
            }
            access.append(access.isEmpty() ? "" : ",").append("{\"type\":\"").append(parts[0])
                    .append("\",\"name\":\"").append(parts[1]).append("\",\"actions\":[\"")
                    .append(String.join("\",\"", parts[2].split(","))).append("\"]}");
        }
        long now = System.currentTimeMillis() / 1000;
        String claims = "{\"iss\":\"" + ISSUER + "\",\"sub\":\"" + LocalRegistry.USER + "\",\"aud\":\"" + SERVICE
                + "\",\"exp\":" + (now + 300) + ",\"nbf\":" + (now - 10) + ",\"iat\":" + now + ",\"jti\":\""
                + UUID.randomUUID() + "\",\"access\":[" + access + "]}";
        String signingInput = url.encodeToString(header.getBytes(StandardCharsets.UTF_8)) + "."
                + url.encodeToString(claims.getBytes(StandardCharsets.UTF_8));
        Signature rsa = Signature.getInstance("SHA256withRSA");
        rsa.initSign(key);
        rsa.update(signingInput.getBytes(StandardCharsets.US_ASCII));
        return signingInput + "." + url.encodeToString(rsa.sign());
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
