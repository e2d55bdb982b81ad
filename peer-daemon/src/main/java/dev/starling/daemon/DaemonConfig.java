package dev.starling.daemon;

import dev.starling.peer.PeerAccess;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * What a node daemon runs with; every value, its default and why, is in docs/configuration.md.
 *
 * @param root       state: the disk tier ({@code chunks/}) and the mounts' work directories ({@code mounts/})
 * @param socket     the control socket `starling mount --socket` and `starling status` talk to
 * @param peerListen where peers reach this node's chunks
 * @param join       the peers' chunk addresses (static membership); this node's own address may be among them
 * @param zone       this node's zone: owners in the same zone are asked first
 * @param clusterId  peers of another cluster are refused at the handshake
 * @param allowRegistries registry hosts this node fetches from on a peer's behalf (never a host a peer names otherwise)
 * @param cacheBytes disk tier bound, or null for half the file system's space
 * @param metricsListen where the Prometheus endpoint listens ({@code /metrics}), or null for none
 * @param tls        mutual TLS between peers with the cluster CA, or null for plain TCP
 * @param store      the Additional Layer Store for CRI-O and Podman, or null for none
 * @param containerdSocket where containerd reaches the remote snapshotter (state under {@code root/snapshotter}), or null for none
 * @param imageService the CRI image-service proxy kubelet's {@code --image-service-endpoint} names, or null for none
 * @param uploadBytesPerSecond what this node sends to all peers together, at most; 0 for no cap
 * @param hedgeAfter how long a span's owner may take before the next peer is asked too (for what it holds)
 * @param memoryTierBytes the memory tier's bound: chunks still to be read (read ahead, or partly read)
 * @param warmup     run the read path once over a layer of its own right after start ({@link Warmup})
 * @param peerAccess who may read which blob over the peer port ({@link PeerAccess}): public blobs only, or
 *                   every blob for peers proving a cluster certificate (needs {@code tls})
 * @param advertise  where the others reach this node's peer port, and so its id; null for {@code peerListen}
 * @param uploadSlots answers this node sends its peers at once; past it a request is told BUSY with the span's
 *                   other holders, so a hot span spreads through the nodes that have it (0: no bound)
 */
public record DaemonConfig(Path root, Path socket, InetSocketAddress peerListen, List<InetSocketAddress> join, String zone,
                           String clusterId, Set<String> allowRegistries, Long cacheBytes, InetSocketAddress metricsListen,
                           Tls tls, Store store, Path containerdSocket, ImageService imageService, long uploadBytesPerSecond,
                           java.time.Duration hedgeAfter, long memoryTierBytes, boolean warmup, PeerAccess.Mode peerAccess,
                           InetSocketAddress advertise, int uploadSlots) {
    /** Answers sent to peers at once by default: each gets an eighth of the uplink, and a hot span's readers beyond go to its holders. */
    public static final int DEFAULT_UPLOAD_SLOTS = 8;

    public DaemonConfig(Path root, Path socket, InetSocketAddress peerListen, List<InetSocketAddress> join, String zone,
                        String clusterId, Set<String> allowRegistries, Long cacheBytes) {
        this(root, socket, peerListen, join, zone, clusterId, allowRegistries, cacheBytes, null, null, null, null, null, 0, null,
                DEFAULT_MEMORY_TIER_BYTES, false, PeerAccess.Mode.PUBLIC, null, DEFAULT_UPLOAD_SLOTS);
    }

    /**
     * The CRI image-service proxy.
     *
     * @param listen     where kubelet's {@code --image-service-endpoint} points
     * @param containerd containerd's CRI socket, where every image call goes on to
     */
    public record ImageService(Path listen, Path containerd) {
        public static final Path DEFAULT_CONTAINERD = Path.of("/run/containerd/containerd.sock");
    }

    /**
     * The Additional Layer Store.
     *
     * @param mountPoint what storage.conf's {@code additionallayerstores} names (with {@code :ref})
     * @param ttl        how long a layer and its image stay open after their last use
     */
    public record Store(Path mountPoint, java.time.Duration ttl) {
        public static final java.time.Duration DEFAULT_TTL = java.time.Duration.ofMinutes(2);

        public Store {
            if (ttl.isNegative()) {
                throw new IllegalArgumentException("the store's TTL cannot be negative: " + ttl);
            }
        }
    }

    /** This node's PKCS#12 key store (key and CA-signed certificate), the CA's trust store, and their password. */
    public record Tls(Path keyStore, Path trustStore, char[] password) {
    }

    public static final Path DEFAULT_ROOT = Path.of("/var/lib/starling");
    /** The store's mount point under the root, unless told otherwise: {@code /var/lib/starling/store} by default. */
    public static final String STORE_DIRECTORY = "store";
    /**
     * How long an owner may take before the next peer is asked as well: well above a chunk's time on
     * a LAN (tens of ms for 4 MiB at 1 Gbit/s), well below the timeout that declares a peer dead.
     */
    public static final java.time.Duration DEFAULT_HEDGE_AFTER = java.time.Duration.ofSeconds(1);
    public static final long DEFAULT_MEMORY_TIER_BYTES = dev.starling.fetch.ChunkStore.DEFAULT_MEMORY_BYTES;
    public static final Path DEFAULT_CONTAINERD_SOCKET = Path.of("/run/starling/containerd.sock");
    public static final Path DEFAULT_SOCKET = Path.of("/run/starling/starling.sock");
    public static final int DEFAULT_PEER_PORT = 7400;

    public DaemonConfig {
        if (uploadSlots < 0) {
            throw new IllegalArgumentException("--upload-slots is 0 (no bound) or more, not " + uploadSlots);
        }
        if (uploadBytesPerSecond < 0) {
            throw new IllegalArgumentException("the upload rate cannot be negative: " + uploadBytesPerSecond);
        }
        hedgeAfter = hedgeAfter == null ? DEFAULT_HEDGE_AFTER : hedgeAfter;
        if (memoryTierBytes < 0) {
            throw new IllegalArgumentException("the memory tier cannot be negative: " + memoryTierBytes);
        }
        peerAccess = peerAccess == null ? PeerAccess.Mode.PUBLIC : peerAccess;
        if (peerAccess == PeerAccess.Mode.CLUSTER && tls == null) {
            throw new IllegalArgumentException("--peer-access cluster needs mutual TLS (--tls-keystore, --tls-truststore, "
                    + "--tls-password-file): without it, nothing shows that a peer is a member of the cluster");
        }
        join = List.copyOf(join);
        advertise = advertise == null ? peerListen : advertise;
        if (advertise.getAddress() != null && advertise.getAddress().isAnyLocalAddress()) {
            throw new IllegalArgumentException("this node would advertise " + address(advertise) + ", which no peer can "
                    + "reach: give --advertise HOST:PORT, the address the others reach this node at");
        }
        if (advertise.getAddress() != null && advertise.getAddress().isLoopbackAddress()) {
            for (InetSocketAddress peer : join) {
                if (peer.getAddress() != null && !peer.getAddress().isLoopbackAddress()) {
                    throw new IllegalArgumentException("this node would advertise " + address(advertise) + ", a loopback "
                            + "address, to peers such as " + address(peer) + " that cannot reach it there: give --advertise "
                            + "HOST:PORT (in a pod, POD_IP from the downward API is used), or --peer-listen an address they reach");
                }
            }
        }
        allowRegistries = Set.copyOf(allowRegistries);
        zone = zone == null ? "" : zone;
    }

    /** Where membership (SWIM) messages are received: the peer port + 1, beside the chunks. */
    public InetSocketAddress membershipListen() {
        return new InetSocketAddress(peerListen.getHostString(), peerListen.getPort() + 1);
    }

    /** Where the others send this node membership messages: the advertised peer port + 1. */
    public InetSocketAddress membershipAdvertise() {
        return new InetSocketAddress(advertise.getHostString(), advertise.getPort() + 1);
    }

    /**
     * The address to advertise when none is given: {@code $POD_IP} in a pod (with the peer port);
     * else the listen address, unless it is a wildcard, when it is the address this host's route to
     * the first peer leaves from; else loopback.
     */
    public static InetSocketAddress defaultAdvertise(InetSocketAddress listen, List<InetSocketAddress> join, String podIp) {
        if (podIp != null && !podIp.isBlank()) {
            return new InetSocketAddress(podIp.strip(), listen.getPort());
        }
        if (listen.getAddress() == null || !listen.getAddress().isAnyLocalAddress()) {
            return listen;
        }
        for (InetSocketAddress peer : join) {
            if (peer.getAddress() == null || peer.getAddress().isAnyLocalAddress()) {
                continue;
            }
            try (java.net.DatagramSocket probe = new java.net.DatagramSocket()) {
                probe.connect(peer); // no packet is sent: the kernel picks the route and its source address
                java.net.InetAddress from = probe.getLocalAddress();
                if (from != null && !from.isAnyLocalAddress()) {
                    return new InetSocketAddress(from, listen.getPort());
                }
            } catch (java.io.IOException | RuntimeException e) {
                // no route to this one: try the next
            }
        }
        return new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), listen.getPort());
    }

    /** The members to join through: the `--join` peers' membership addresses (their peer port + 1). */
    public List<InetSocketAddress> membershipBootstrap() {
        return join.stream().map(a -> new InetSocketAddress(a.getHostString(), a.getPort() + 1)).toList();
    }

    /** A loopback port that is free, with the next one free too (for the membership listener): for tests and the demo. */
    public static int freePortPair() throws java.io.IOException {
        for (int attempt = 0; attempt < 50; attempt++) {
            try (java.net.ServerSocket a = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
                 java.net.ServerSocket b = new java.net.ServerSocket(a.getLocalPort() + 1, 1, java.net.InetAddress.getLoopbackAddress())) {
                return a.getLocalPort();
            } catch (java.io.IOException taken) {
                // the next port was in use: try another pair
            }
        }
        throw new java.io.IOException("no two free adjacent loopback ports");
    }

    /** This node's id: its advertised peer address, which is how the others name it in their `--join` lists. */
    public String nodeId() {
        return address(advertise);
    }

    static String address(InetSocketAddress a) {
        return a.getHostString() + ":" + a.getPort();
    }
}
