package dev.starling.protocol;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.TrustManagerFactory;

/**
 * Mutual TLS between peers with the cluster's CA: each node presents a certificate the CA signed
 * and accepts only peers that do the same, so no one outside the cluster can ask a node for chunks
 * or pose as a peer. Chunks are verified whatever TLS says; TLS keeps strangers out.
 */
public final class ClusterTls {
    private ClusterTls() {
    }

    /** The server side: this node's key and certificate, peers' certificates required and checked against the CA. */
    public static SslContext server(Path keyStore, char[] password, Path trustStore) throws IOException {
        try {
            return SslContextBuilder.forServer(keys(keyStore, password)).trustManager(trust(trustStore, password))
                    .clientAuth(ClientAuth.REQUIRE).build();
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot load the TLS key store " + keyStore + " or trust store " + trustStore + ": "
                    + e.getMessage(), e);
        }
    }

    /** The client side: the same key and CA, the server's certificate checked against the CA. */
    public static SslContext client(Path keyStore, char[] password, Path trustStore) throws IOException {
        try {
            return SslContextBuilder.forClient().keyManager(keys(keyStore, password)).trustManager(trust(trustStore, password))
                    .build();
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot load the TLS key store " + keyStore + " or trust store " + trustStore + ": "
                    + e.getMessage(), e);
        }
    }

    private static KeyManagerFactory keys(Path file, char[] password) throws IOException, GeneralSecurityException {
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(load(file, password), password);
        return kmf;
    }

    private static TrustManagerFactory trust(Path file, char[] password) throws IOException, GeneralSecurityException {
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(file, password));
        return tmf;
    }

    private static KeyStore load(Path file, char[] password) throws IOException, GeneralSecurityException {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(file)) {
            ks.load(in, password);
        }
        return ks;
    }
}
