package dev.starling.protocol;

import java.net.InetAddress;

/**
 * Who sent a request, as far as the server can tell: the node id it claimed at the handshake (not
 * proof of anything), the address it connects from, and the subject of the certificate it proved
 * with mutual TLS (null on a plain connection). Only the certificate is evidence of membership.
 */
public record PeerIdentity(String nodeId, InetAddress address, String certificate) {
    /** Whether the requester proved, with a certificate the cluster CA signed, that it is a member. */
    public boolean authenticated() {
        return certificate != null;
    }

    @Override
    public String toString() {
        return nodeId + " (" + address.getHostAddress() + (certificate == null ? "" : ", " + certificate) + ")";
    }
}
