package dev.starling.daemon;

import dev.starling.discovery.AtomixMembership;
import dev.starling.discovery.Member;
import dev.starling.discovery.Membership;
import dev.starling.discovery.StaticMembership;
import dev.starling.estargz.Footer;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.layers.ImageResolver;
import dev.starling.layers.OpenLayers;
import dev.starling.layers.TocCache;
import dev.starling.peer.PeerAccess;
import dev.starling.peer.PeerChunkProvider;
import dev.starling.peer.PeerConnections;
import dev.starling.peer.PeerFallbacks;
import dev.starling.peer.PeerOrigin;
import dev.starling.peer.Quarantine;
import dev.starling.peer.SpanHolders;
import dev.starling.protocol.ClusterTls;
import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerServer;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import dev.starling.registry.RegistryException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;

/**
 * Everything node-wide, once per process, wired in one place: the chunk store, the open layers
 * and the TOCs they keep, the image resolver every front end mounts through, and the peer plane
 * (membership, connections, quarantine, who may read what, the chunk server). Front ends (the
 * layer store, the snapshotter, mounts through the control socket) sit on it; {@link Daemon}
 * starts and stops it with them.
 */
final class Node implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Node.class.getName());
    /** How long a peer may take to answer a request before the next source is asked. */
    static final Duration PEER_TIMEOUT = Duration.ofSeconds(5);

    final DaemonConfig config;
    final ChunkStore store;
    final OpenLayers layers;
    final ImageResolver images;
    final Membership membership;
    final Quarantine quarantine = new Quarantine(Duration.ofMinutes(10), System::nanoTime);
    final PeerFallbacks fallbacks = new PeerFallbacks();
    final PeerAccess access;
    final PeerChunkProvider provider;
    final PeerServer peers;
    /** Virtual threads for peers' requests, resolves and the like. */
    final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    /** Registries of images mounted here: this node fetches from them for peers too. */
    private final Set<String> mountedRegistries = ConcurrentHashMap.newKeySet();
    /** What {@link #close} closes, last started first. */
    private final Deque<AutoCloseable> started = new ArrayDeque<>();

    /** Starts the node's parts; a failure closes what had started and throws. */
    static Node start(DaemonConfig config, RegistryClient client) throws IOException, InterruptedException {
        return new Node(config, client);
    }

    private Node(DaemonConfig config, RegistryClient client) throws IOException, InterruptedException {
        this.config = config;
        started.push(executor::shutdownNow);
        try {
            var chunks = config.root().resolve("chunks");
            long cacheBytes = config.cacheBytes() != null ? config.cacheBytes() : DiskChunkCache.defaultSize(chunks);
            this.store = closing(new ChunkStore(new DiskChunkCache(chunks, cacheBytes), boundedMemoryTier(config), FetchOptions.DEFAULTS));
            Member self = new Member(config.nodeId(), config.advertise(), config.zone());
            // one node needs no failure detector; with peers, SWIM finds who is alive (and who was killed)
            boolean alone = config.join().stream().allMatch(a -> DaemonConfig.address(a).equals(config.nodeId()));
            DaemonConfig.Tls tls = config.tls();
            this.membership = closing(alone
                    ? new StaticMembership(self, List.of())
                    : new AtomixMembership(config.clusterId(), self, config.membershipListen(), config.membershipAdvertise(),
                            config::membershipBootstrap, Duration.ofMillis(500), Duration.ofSeconds(2),
                            tls == null ? null : new AtomixMembership.Tls(tls.keyStore(), tls.trustStore(), new String(tls.password())))
                            .start(Duration.ofSeconds(30)));
            PeerConnections connections = closing(new PeerConnections(config.clusterId(), config.nodeId(), Duration.ofSeconds(2),
                    tls == null ? null : ClusterTls.client(tls.keyStore(), tls.password(), tls.trustStore())));
            RegistryClient anonymous = closing(client.withoutCredentials());
            this.access = new PeerAccess(config.peerAccess(), (registry, repository, blob) -> givenToAnyone(anonymous,
                    registry, repository, blob), System::nanoTime);
            PeerOrigin.Peers peerContext = new PeerOrigin.Peers(membership, connections, quarantine, access, fallbacks,
                    store.options().fetchUnit(), PEER_TIMEOUT, config.hedgeAfter());
            this.layers = closing(new OpenLayers(store, (layer, blob, registry) -> {
                PeerOrigin origin = new PeerOrigin(new Frame.Locator(layer.repository().registry(), layer.repository().repository(),
                        layer.digest().toString(), layer.tocDigest(), blob.footer().format() == Footer.Format.ZSTD_CHUNKED, false, 0, 0),
                        peerContext, registry);
                if (!alone) {
                    executor.execute(origin::shared); // whether peers may hear of it, asked while the registry is surely there
                }
                return origin;
            }, new TocCache(config.root().resolve("tocs"))));
            // a node fetches for peers from the registries it is told to, and from those of images mounted here
            this.provider = new PeerChunkProvider(store, access, layers::openBlob,
                    (repository, blob, registryAllowed) -> layers.verifiedToc(client, repository, blob, registryAllowed),
                    host -> config.allowRegistries().contains(host) || mountedRegistries.contains(host), executor, System::nanoTime)
                    .withSwarm(new SpanHolders(store.options().fetchUnit(), System::nanoTime),
                            id -> membership.members().stream().anyMatch(m -> m.nodeId().equals(id)));
            PeerServer.Settings settings = PeerServer.Settings.defaults(config.clusterId(), config.nodeId())
                    .withUploadBytesPerSecond(config.uploadBytesPerSecond()).withUploadSlots(config.uploadSlots());
            if (tls != null) {
                settings = settings.withTls(ClusterTls.server(tls.keyStore(), tls.password(), tls.trustStore()));
            }
            PeerServer.Settings serverSettings = settings;
            this.peers = closing(Daemon.listening("--peer-listen", config.peerListen(),
                    () -> PeerServer.start(config.peerListen(), serverSettings, provider)));
            this.images = closing(new ImageResolver(client, layers, executor, ref -> mountedRegistries.add(ref.registry()),
                    config.store() == null ? DaemonConfig.Store.DEFAULT_TTL : config.store().ttl(), System::nanoTime));
        } catch (IOException | InterruptedException | RuntimeException e) {
            close();
            throw e;
        }
    }

    private <T extends AutoCloseable> T closing(T part) {
        started.push(part);
        return part;
    }

    /** Notes that an image of {@code registry} is mounted here: peers may ask this node to fetch from it. */
    void mounting(ImageReference ref) {
        mountedRegistries.add(ref.registry());
    }

    InetSocketAddress peerAddress() {
        return peers.address();
    }

    /** Whether the registry gives a blob to anyone, asked without credentials (a definite no for 401, 403, 404). */
    private static boolean givenToAnyone(RegistryClient anonymous, String registry, String repository, String blob)
            throws IOException {
        try {
            return anonymous.blobExists(ImageReference.parse(registry + "/" + repository), blob);
        } catch (RegistryException e) {
            if (e.status() == 401 || e.status() == 403 || e.status() == 404) {
                return false;
            }
            throw e;
        }
    }

    /**
     * The memory tier is heap: at most half of it, so a small heap (a pod's memory limit; see
     * bin/starling) leaves room for the chunks being fetched and decompressed.
     */
    private static long boundedMemoryTier(DaemonConfig config) {
        long half = Runtime.getRuntime().maxMemory() / 2;
        if (config.memoryTierBytes() > half) {
            LOG.warning("the memory tier is " + half / (1 << 20) + " MiB, half the heap, not the " + config.memoryTierBytes() / (1 << 20)
                    + " MiB asked for: raise the heap (STARLING_HEAP) or lower --memory-tier");
            return half;
        }
        return config.memoryTierBytes();
    }

    /** Stops every part, last started first; one part's failure does not keep the others open. */
    @Override
    public void close() {
        while (!started.isEmpty()) {
            AutoCloseable part = started.pop();
            try {
                part.close();
            } catch (Exception e) {
                LOG.warning("stopping " + part.getClass().getSimpleName() + ": " + e.getMessage());
            }
        }
    }
}
