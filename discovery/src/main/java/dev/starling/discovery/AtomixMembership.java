package dev.starling.discovery;

import io.atomix.cluster.AtomixCluster;
import io.atomix.cluster.Node;
import io.atomix.cluster.discovery.BootstrapDiscoveryProvider;
import io.atomix.cluster.protocol.SwimMembershipProtocol;
import io.atomix.utils.net.Address;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * Membership by Atomix's SWIM failure detector (atomix-cluster, membership only: no consensus, no
 * data). Each member publishes its chunk address and zone as properties. Bootstrap nodes come from
 * a supplier, so a DNS name (a Kubernetes headless Service) can be re-resolved; probes every
 * 500 ms with a 2 s failure timeout find a killed node in about 2-3 s.
 */
public final class AtomixMembership implements Membership {
    private static final Logger LOG = Logger.getLogger(AtomixMembership.class.getName());
    static final String CHUNK_ADDRESS = "starling.chunk";
    static final String ZONE = "starling.zone";

    private final AtomixCluster cluster;
    private final Member self;

    /** The cluster's mutual TLS for Atomix's messaging: PKCS#12 key and trust stores and their password. */
    public record Tls(java.nio.file.Path keyStore, java.nio.file.Path trustStore, String password) {
    }

    public AtomixMembership(String clusterId, Member self, InetSocketAddress listen, Supplier<List<InetSocketAddress>> bootstrap,
                            Duration probeInterval, Duration failureTimeout) {
        this(clusterId, self, listen, listen, bootstrap, probeInterval, failureTimeout, null);
    }

    /**
     * @param listen     where Atomix's own messaging listens (membership traffic, not chunks): on that
     *                   address only, not on every interface
     * @param advertised where the others send this node membership messages (its address as they reach it)
     * @param bootstrap  the membership addresses of some members (a static list, or a DNS name resolved now)
     * @param tls        mutual TLS for the membership's TCP messaging, or null for none
     */
    public AtomixMembership(String clusterId, Member self, InetSocketAddress listen, InetSocketAddress advertised,
                            Supplier<List<InetSocketAddress>> bootstrap, Duration probeInterval, Duration failureTimeout, Tls tls) {
        this.self = self;
        List<Node> nodes = new ArrayList<>();
        for (InetSocketAddress a : bootstrap.get()) {
            nodes.add(Node.builder().withAddress(Address.from(a.getHostString(), a.getPort())).build());
        }
        var builder = AtomixCluster.builder();
        if (tls != null) {
            builder.withTlsEnabled(true).withKeyStore(tls.keyStore().toString()).withKeyStorePassword(tls.password())
                    .withTrustStore(tls.trustStore().toString()).withTrustStorePassword(tls.password());
        }
        this.cluster = builder
                .withClusterId(clusterId)
                .withMemberId(self.nodeId())
                .withAddress(Address.from(advertised.getHostString(), advertised.getPort()))
                .withMessagingInterface(listen.getAddress() == null ? listen.getHostString() : listen.getAddress().getHostAddress())
                .withMessagingPort(listen.getPort())
                .withZone(self.zone().isEmpty() ? null : self.zone())
                .withProperty(CHUNK_ADDRESS, self.chunkAddress().getHostString() + ":" + self.chunkAddress().getPort())
                .withProperty(ZONE, self.zone())
                .withMembershipProvider(BootstrapDiscoveryProvider.builder().withNodes(nodes).build())
                .withMembershipProtocol(SwimMembershipProtocol.builder().withProbeInterval(probeInterval)
                        .withFailureTimeout(failureTimeout).build())
                .build();
    }

    /** Joins; returns once this node's membership service runs (the others are found as they answer). */
    public AtomixMembership start(Duration timeout) {
        try {
            cluster.start().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("cannot start membership for " + self.nodeId() + ": " + e, e);
        }
        return this;
    }

    @Override
    public Member self() {
        return self;
    }

    @Override
    public List<Member> members() {
        List<Member> out = new ArrayList<>();
        out.add(self);
        for (io.atomix.cluster.Member m : cluster.getMembershipService().getMembers()) {
            if (m.id().id().equals(self.nodeId()) || !m.isReachable()) {
                continue;
            }
            String chunk = m.properties().getProperty(CHUNK_ADDRESS);
            if (chunk == null) {
                continue; // not a Starling node, or one that has not said where its chunks are
            }
            int colon = chunk.lastIndexOf(':');
            try {
                out.add(new Member(m.id().id(), new InetSocketAddress(chunk.substring(0, colon),
                        Integer.parseInt(chunk.substring(colon + 1))), m.properties().getProperty(ZONE, "")));
            } catch (RuntimeException e) {
                LOG.warning("member " + m.id() + " publishes an unusable chunk address " + chunk);
            }
        }
        return out;
    }

    @Override
    public void close() {
        try {
            cluster.stop().get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.warning("stopping membership: " + e);
        }
    }
}
