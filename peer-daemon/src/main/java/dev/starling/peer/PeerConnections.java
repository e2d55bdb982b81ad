package dev.starling.peer;

import dev.starling.discovery.Member;
import dev.starling.protocol.FrameCodec;
import dev.starling.protocol.PeerClient;
import dev.starling.protocol.PeerException;
import io.netty.handler.ssl.SslContext;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** One connection per peer, made when first needed and made again when it dropped. */
public final class PeerConnections implements AutoCloseable {
    private final String clusterId;
    private final String nodeId;
    private final Duration connectTimeout;
    private final SslContext tls;
    private final Map<String, PeerClient> clients = new ConcurrentHashMap<>();

    public PeerConnections(String clusterId, String nodeId, Duration connectTimeout, SslContext tls) {
        this.clusterId = clusterId;
        this.nodeId = nodeId;
        this.connectTimeout = connectTimeout;
        this.tls = tls;
    }

    public PeerClient get(Member peer) throws PeerException {
        PeerClient c = clients.get(peer.nodeId());
        if (c != null && c.isOpen()) {
            return c;
        }
        synchronized (this) {
            c = clients.get(peer.nodeId());
            if (c != null && c.isOpen()) {
                return c;
            }
            if (c != null) {
                clients.remove(peer.nodeId(), c); // a failed reconnect must not leave the closed one to be closed again
                c.close();
            }
            c = PeerClient.connect(peer.chunkAddress(), clusterId, nodeId, connectTimeout, tls, FrameCodec.DEFAULT_MAX_FRAME);
            clients.put(peer.nodeId(), c);
            return c;
        }
    }

    @Override
    public void close() {
        clients.values().forEach(PeerClient::close);
        clients.clear();
    }
}
