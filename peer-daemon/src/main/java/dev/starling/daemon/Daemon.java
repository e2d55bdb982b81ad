package dev.starling.daemon;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.discovery.AtomixMembership;
import dev.starling.discovery.Member;
import dev.starling.discovery.Membership;
import dev.starling.discovery.StaticMembership;
import dev.starling.estargz.Footer;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fetch.LayerReader;
import dev.starling.fetch.ReadCounters;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.StoreFileSystem;
import dev.starling.fuse.StoreMount;
import dev.starling.mount.ImageMount;
import dev.starling.mount.ImageResolver;
import dev.starling.mount.TocCache;
import dev.starling.mount.OpenLayers;
import dev.starling.peer.PeerChunkProvider;
import dev.starling.peer.PeerAccess;
import dev.starling.peer.PeerConnections;
import dev.starling.peer.PeerFallbacks;
import dev.starling.peer.PeerOrigin;
import dev.starling.peer.Quarantine;
import dev.starling.protocol.ClusterTls;
import dev.starling.protocol.Frame;
import dev.starling.protocol.PeerServer;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import dev.starling.snapshot.ImageServiceProxy;
import dev.starling.snapshot.SnapshotServer;
import dev.starling.store.HelperCredentials;
import dev.starling.store.StoreLayers;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;

/**
 * The node daemon: one chunk store, one set of open layers, the peer server and the control
 * socket, in one process. Images are mounted through it (`starling mount --socket`), so every
 * mount shares the node's chunks and peers; each layer fetches first from the owner of its span
 * among the peers, then from the registry.
 */
public final class Daemon implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Daemon.class.getName());
    /** How long a peer may take to answer a request before the next source is asked. */
    static final Duration PEER_TIMEOUT = Duration.ofSeconds(5);


    private final DaemonConfig config;
    private final RegistryClient client;
    private final ChunkStore store;
    private final OpenLayers layers;
    private final Membership membership;
    private final PeerConnections connections;
    private final Quarantine quarantine = new Quarantine(Duration.ofMinutes(10), System::nanoTime);
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final PeerChunkProvider provider;
    private final PeerFallbacks fallbacks = new PeerFallbacks();
    /** This daemon's hold on its root: one daemon per disk tier. */
    private final RootLock rootLock;
    /** The node's registry client without credentials: what the registry gives anyone. */
    private final RegistryClient anonymous;
    private final PeerAccess access;
    private final PeerServer peers;
    private final ControlSocket control;
    private final DaemonMetrics metrics;
    private final ImageResolver images;
    /** Where `starling store-auth` puts what containers/image hands its auth helper; null when the client does not consult it. */
    private final HelperCredentials helperCredentials;
    private final StoreMount layerStore;
    private final SnapshotServer snapshotter;
    private final ImageServiceProxy imageService;
    private final java.util.concurrent.ScheduledExecutorService sweeper;
    private final Map<Path, ImageMount> mounts = new LinkedHashMap<>();
    /** Targets whose mount is resolving now (outside the lock). */
    private final java.util.Set<Path> mounting = new java.util.HashSet<>();
    private volatile boolean stopping;
    private final java.util.Set<String> mountedRegistries = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final CountDownLatch closed = new CountDownLatch(1);
    private int nextMount;
    /** The warm-up's thread, or null: a stop waits for its round to end, so no mount of it is left behind. */
    private Thread warmup;
    /** off, running, done or failed: {@link Warmup}, shown in the status. */
    private volatile String warmupState = "off";

    private Daemon(DaemonConfig config, RegistryClient client, HelperCredentials helperCredentials)
            throws IOException, InterruptedException {
        this.config = config;
        this.client = client;
        this.helperCredentials = helperCredentials;
        // a private image's chunks, TOCs and mounts are under the root: no other local user passes it
        dev.starling.fetch.OwnerOnly.directories(config.root());
        this.rootLock = RootLock.acquire(config.root());
        refuseLiveSockets(config); // before anything is started or mounted that a refusal would leave behind
        Path chunks = config.root().resolve("chunks");
        long cacheBytes = config.cacheBytes() != null ? config.cacheBytes() : DiskChunkCache.defaultSize(chunks);
        this.store = new ChunkStore(new DiskChunkCache(chunks, cacheBytes), boundedMemoryTier(config), FetchOptions.DEFAULTS);
        Member self = new Member(config.nodeId(), config.advertise(), config.zone());
        // one node needs no failure detector; with peers, SWIM finds who is alive (and who was killed)
        boolean alone = config.join().stream().allMatch(a -> DaemonConfig.address(a).equals(config.nodeId()));
        this.membership = alone
                ? new StaticMembership(self, List.of())
                : new AtomixMembership(config.clusterId(), self, config.membershipListen(), config.membershipAdvertise(),
                        config::membershipBootstrap, Duration.ofMillis(500), Duration.ofSeconds(2), atomixTls(config.tls()))
                        .start(Duration.ofSeconds(30));
        DaemonConfig.Tls tls = config.tls();
        warnIfOpen(config);
        this.connections = new PeerConnections(config.clusterId(), config.nodeId(), Duration.ofSeconds(2),
                tls == null ? null : ClusterTls.client(tls.keyStore(), tls.password(), tls.trustStore()));
        this.anonymous = client.withoutCredentials();
        this.access = new PeerAccess(config.peerAccess(), this::givenToAnyone, System::nanoTime);
        PeerOrigin.Peers peerContext = new PeerOrigin.Peers(membership, connections, quarantine, access, fallbacks,
                store.options().fetchUnit(), PEER_TIMEOUT, config.hedgeAfter());
        this.layers = new OpenLayers(store, (layer, blob, registry) -> {
            PeerOrigin origin = new PeerOrigin(new Frame.Locator(layer.repository().registry(), layer.repository().repository(),
                    layer.digest().toString(), layer.tocDigest(), blob.footer().format() == Footer.Format.ZSTD_CHUNKED, false, 0, 0),
                    peerContext, registry);
            if (!alone) {
                executor.execute(origin::shared); // whether peers may hear of it, asked while the registry is surely there
            }
            return origin;
        }, new TocCache(config.root().resolve("tocs")));
        // a node fetches for peers from the registries it is told to, and from those of images mounted here
        this.provider = new PeerChunkProvider(store, access, layers::openBlob,
                (repository, blob, registryAllowed) -> layers.verifiedToc(client, repository, blob, registryAllowed),
                host -> config.allowRegistries().contains(host) || mountedRegistries.contains(host), executor, System::nanoTime);
        PeerServer.Settings peerSettings = PeerServer.Settings.defaults(config.clusterId(), config.nodeId())
                .withUploadBytesPerSecond(config.uploadBytesPerSecond());
        if (tls != null) {
            peerSettings = peerSettings.withTls(ClusterTls.server(tls.keyStore(), tls.password(), tls.trustStore()));
        }
        PeerServer.Settings serverSettings = peerSettings;
        this.peers = listening("--peer-listen", config.peerListen(), () -> PeerServer.start(config.peerListen(), serverSettings, provider));
        DaemonConfig.Store storeConfig = config.store();
        Duration storeTtl = storeConfig == null ? DaemonConfig.Store.DEFAULT_TTL : storeConfig.ttl();
        this.images = new ImageResolver(client, layers, executor, ref -> mountedRegistries.add(ref.registry()),
                storeTtl, System::nanoTime);
        this.layerStore = storeConfig == null ? null : StoreMount.mount(new StoreLayers(images), storeConfig.mountPoint(),
                MountOptions.DEFAULTS, storeTtl, System::nanoTime);
        this.snapshotter = config.containerdSocket() == null ? null : SnapshotServer.start(config.containerdSocket(),
                config.root().resolve("snapshotter"), images, MountOptions.DEFAULTS, executor);
        if (config.imageService() != null && helperCredentials == null) {
            throw new IllegalArgumentException("the CRI image-service proxy keeps pulls' credentials: start the daemon with them");
        }
        this.imageService = config.imageService() == null ? null : ImageServiceProxy.start(config.imageService().listen(),
                config.imageService().containerd(), helperCredentials, executor);
        this.sweeper = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "starling-store-sweep");
            t.setDaemon(true);
            return t;
        });
        long sweepMillis = Math.clamp(storeTtl.toMillis() / 4, 250, 30_000);
        sweeper.scheduleWithFixedDelay(this::sweepStore, sweepMillis, sweepMillis, java.util.concurrent.TimeUnit.MILLISECONDS);
        if (config.warmup()) {
            warmupState = "running";
            warmup = new Thread(() -> warmupState = Warmup.run(config.root().resolve("warmup"), () -> stopping) ? "done" : "failed",
                    "starling-warmup");
            warmup.setDaemon(true);
            warmup.setPriority(Thread.MIN_PRIORITY);
            warmup.start();
        }
        this.control = ControlSocket.listen(config.socket(), this::handle);
        this.metrics = config.metricsListen() == null ? null
                : listening("--metrics-listen", config.metricsListen(), () -> new DaemonMetrics(this, config.metricsListen()));
    }

    /** A control or containerd socket another live process serves is refused, naming its option. */
    private static void refuseLiveSockets(DaemonConfig config) throws IOException {
        if (ControlSocket.answers(config.socket())) {
            throw new IOException("a daemon already serves --socket " + config.socket() + ": stop it first, or give this one another");
        }
        if (config.containerdSocket() != null && ControlSocket.answers(config.containerdSocket())) {
            throw new IOException("a live server already serves " + config.containerdSocket() + " (--containerd-socket; another "
                    + "starling daemon?): stop it first, or give this one another socket");
        }
    }

    /** Something that binds an address, for {@link #listening}. */
    private interface Binding<T> {
        T bind() throws IOException, InterruptedException;
    }

    /** Binds, saying which option named an address that is taken. */
    private static <T> T listening(String option, InetSocketAddress address, Binding<T> binding) throws IOException, InterruptedException {
        try {
            return binding.bind();
        } catch (java.net.BindException e) {
            throw new IOException(option + " " + DaemonConfig.address(address) + ": address already in use (another "
                    + "starling daemon, or another program, listens there): stop it, or give " + option + " another address", e);
        }
    }

    /** Whether the registry gives a blob to anyone, asked without credentials (a definite no for 401, 403, 404). */
    private boolean givenToAnyone(String registry, String repository, String blob) throws IOException {
        try {
            return anonymous.blobExists(ImageReference.parse(registry + "/" + repository), blob);
        } catch (dev.starling.registry.RegistryException e) {
            if (e.status() == 401 || e.status() == 403 || e.status() == 404) {
                return false;
            }
            throw e;
        }
    }

    /** Atomix's messaging over the cluster's mutual TLS, or null for plain TCP. */
    private static AtomixMembership.Tls atomixTls(DaemonConfig.Tls tls) {
        return tls == null ? null : new AtomixMembership.Tls(tls.keyStore(), tls.trustStore(), new String(tls.password()));
    }

    /** Says once, at start, that the peer port is open to anyone who can reach it, when it is. */
    private static void warnIfOpen(DaemonConfig config) {
        java.net.InetAddress listen = config.peerListen().getAddress();
        if (config.tls() == null && listen != null && !listen.isLoopbackAddress()) {
            LOG.warning("the peer port " + DaemonConfig.address(config.peerListen()) + " and membership listen on a "
                    + "non-loopback address without TLS: anyone who reaches them can join the membership and ask for "
                    + "the chunks of public images (private ones are never shared with --peer-access public). Give "
                    + "--tls-keystore, --tls-truststore and --tls-password-file when the network is not trusted "
                    + "(docs/operations.md#the-peer-port-who-may-read-what)");
        }
    }

    /** Releases the store's layers and images no one used for the TTL. */
    private void sweepStore() {
        try {
            if (layerStore != null) {
                layerStore.fileSystem().sweep();
            }
            images.sweep();
        } catch (RuntimeException e) { // a failed sweep must not end the schedule
            LOG.warning("sweeping the layer store: " + e);
        }
    }

    /** Where the Additional Layer Store is mounted, or null when there is none. */
    public Path storeMountPoint() {
        return layerStore == null ? null : layerStore.mountPoint();
    }

    /** Where the Prometheus endpoint listens, or null when there is none. */
    public InetSocketAddress metricsAddress() {
        return metrics == null ? null : metrics.address();
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

    /** Every layer's counts since the node started, closed layers' included. */
    ReadCounters totals() {
        return store.totals();
    }

    long peerServedBytes() {
        return peers.bytesServed();
    }

    long peerFillBytes() {
        return provider.fillBytes();
    }

    long diskVerificationFailures() {
        return store.diskVerificationFailures();
    }

    long quarantines() {
        return quarantine.count();
    }

    long refusedRegistryRequests() {
        return provider.refused();
    }

    long forbiddenPeerRequests() {
        return provider.forbidden();
    }

    long refusedPeerConnections() {
        return peers.refusedConnections();
    }

    long peerFallbacks(PeerFallbacks.Reason reason) {
        return fallbacks.count(reason);
    }

    int memberCount() {
        return membership.members().size();
    }

    int openLayerCount() {
        return layers.layers().size();
    }

    long memoryTierBytes() {
        return store.memoryBytes();
    }

    long diskTierBytes() {
        return store.diskBytes();
    }

    public static Daemon start(DaemonConfig config, RegistryClient client) throws IOException {
        return start(config, client, null);
    }

    /** Starts a daemon whose {@code client} consults {@code helperCredentials} (may be null), which `starling store-auth` fills. */
    public static Daemon start(DaemonConfig config, RegistryClient client, HelperCredentials helperCredentials) throws IOException {
        try {
            return new Daemon(config, client, helperCredentials);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting", e);
        }
    }

    public InetSocketAddress peerAddress() {
        return peers.address();
    }

    /** Blocks until {@link #close}. */
    public void awaitClose() throws InterruptedException {
        closed.await();
    }

    private ObjectNode handle(JsonNode request) {
        String op = request.path("op").asText("");
        try {
            return switch (op) {
                case "mount" -> mount(request.path("image").asText(), Path.of(request.path("target").asText()),
                        request.path("platform").isTextual() ? request.path("platform").asText() : null);
                case "umount" -> umount(Path.of(request.path("target").asText()));
                case "status" -> ok().setAll(status());
                case "add-credentials" -> addCredentials(request.path("credentials"));
                default -> fail("unknown operation \"" + op + "\" (mount, umount, status, add-credentials)");
            };
        } catch (IOException | RuntimeException e) {
            return fail(e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    private static ObjectNode ok() {
        return ControlSocket.JSON.createObjectNode().put("ok", true);
    }

    private static ObjectNode fail(String error) {
        return ControlSocket.JSON.createObjectNode().put("ok", false).put("error", error);
    }

    private ObjectNode addCredentials(JsonNode helperInput) throws IOException {
        if (helperCredentials == null) {
            return fail("this daemon takes no credentials from the layer store's auth helper");
        }
        return ok().put("references", helperCredentials.add(helperInput));
    }

    /** Mounts {@code image} at {@code target} through this daemon, as `starling mount --socket` does. */
    public void mountImage(String image, Path target) throws IOException {
        mount(image, target, null);
    }

    /**
     * Mounts an image. The registry work happens outside the daemon's lock, so a slow registry
     * delays only this mount, never `status`, another mount or an unmount; the target is reserved
     * meanwhile so two mounts cannot race for it.
     */
    ObjectNode mount(String image, Path target, String platform) throws IOException {
        Path normalized = target.toAbsolutePath().normalize();
        ImageReference ref = ImageReference.parse(image);
        Path work;
        synchronized (this) {
            if (stopping) {
                throw new IOException("the daemon is stopping");
            }
            if (mounts.containsKey(normalized) || !mounting.add(normalized)) {
                throw new IOException(target + " is already mounted by this daemon");
            }
            work = config.root().resolve("mounts").resolve(Integer.toString(nextMount++));
        }
        long t0 = System.nanoTime();
        ImageMount mount;
        try {
            Files.createDirectories(work);
            mountedRegistries.add(ref.registry());
            mount = ImageMount.mount(client, ref, platform == null ? null : Descriptor.Platform.parse(platform), normalized,
                    work, layers, MountOptions.DEFAULTS);
        } finally {
            synchronized (this) {
                mounting.remove(normalized);
            }
        }
        synchronized (this) {
            if (stopping) { // the daemon stopped while this mount resolved: nothing may stay mounted
                mount.close();
                throw new IOException("the daemon stopped while " + image + " was being mounted");
            }
            mounts.put(normalized, mount);
        }
        LOG.info("mounted " + image + " at " + normalized);
        return ok().put("target", normalized.toString()).put("layers", mount.layerCount())
                .put("readyMillis", (System.nanoTime() - t0) / 1_000_000).put("bytesAtReady", mount.bytesAtReady());
    }

    synchronized ObjectNode umount(Path target) throws IOException {
        ImageMount mount = mounts.remove(target.toAbsolutePath().normalize());
        if (mount == null) {
            throw new IOException("this daemon has nothing mounted at " + target);
        }
        mount.close();
        return ok().put("target", target.toString());
    }

    /** What `starling status` shows: members, layers with fetched share and bytes by source, peers' use. */
    public synchronized ObjectNode status() {
        ObjectNode s = ControlSocket.JSON.createObjectNode();
        s.put("node", config.nodeId()).put("pid", ProcessHandle.current().pid()).put("cluster", config.clusterId()).put("zone", config.zone()).put("warmup", warmupState);
        ArrayNode members = s.putArray("members");
        membership.members().forEach(m -> members.add(m.nodeId()));
        ArrayNode quarantined = s.putArray("quarantined");
        quarantine.current().forEach(quarantined::add);
        s.put("quarantines", quarantine.count());
        s.put("bytesServedToPeers", peers.bytesServed());
        s.put("bytesFilledForPeers", provider.fillBytes());
        s.put("refusedRegistryRequests", provider.refused());
        s.put("peerAccess", access.mode().name().toLowerCase(java.util.Locale.ROOT));
        s.put("forbiddenPeerRequests", provider.forbidden());
        s.put("refusedPeerConnections", peers.refusedConnections());
        s.put("rateLimitedPeerRequests", peers.refusedRequests());
        ObjectNode fell = s.putObject("peerFallbacks");
        fallbacks.counts().forEach((reason, n) -> fell.put(reason.label(), n));
        s.putObject("memory").put("residentBytes", ProcessMemory.residentBytes()).put("heapUsedBytes", ProcessMemory.heapUsedBytes())
                .put("heapMaxBytes", ProcessMemory.heapMaxBytes()).put("memoryTierBytes", store.memoryBytes())
                .put("memoryTierMaxBytes", store.memoryMaxBytes());
        s.put("diskTierBytes", store.diskBytes());
        ReadCounters totals = store.totals(); // since the node started: layers closed since count too
        s.putObject("fetched").put("peerBytes", totals.peerBytes()).put("registryBytes", totals.fetchedBytes())
                .put("registryRequests", totals.fetchRequests()).put("failures", totals.failures());
        ArrayNode mounted = s.putArray("mounts");
        mounts.keySet().forEach(p -> mounted.add(p.toString()));
        if (snapshotter != null) {
            ObjectNode sn = s.putObject("snapshotter");
            sn.put("socket", snapshotter.socket().toString());
            ArrayNode list = sn.putArray("snapshots");
            for (dev.starling.snapshot.Snapshot snap : snapshotter.snapshots()) {
                list.addObject().put("key", snap.key()).put("kind", snap.kind().name().toLowerCase()).put("parent", snap.parent())
                        .put("remote", snap.isRemote());
            }
        }
        if (layerStore != null) {
            ObjectNode st = s.putObject("store");
            st.put("mountPoint", layerStore.mountPoint().toString()).put("images", images.size());
            ArrayNode held = st.putArray("layers");
            for (StoreFileSystem.Held h : layerStore.fileSystem().held()) {
                held.addObject().put("image", h.imageRef()).put("key", h.key()).put("users", h.users())
                        .put("openFiles", h.openFiles());
            }
        }
        ArrayNode open = s.putArray("layers");
        for (OpenLayers.Layer layer : layers.layers()) {
            LayerReader r = layer.reader();
            try {
                open.add(ControlSocket.JSON.readTree(r.stateJson()));
            } catch (IOException e) {
                throw new IllegalStateException("the state JSON is ours", e);
            }
        }
        return s;
    }

    @Override
    public void close() {
        synchronized (this) {
            stopping = true;
            for (ImageMount m : List.copyOf(mounts.values())) {
                try {
                    m.close();
                } catch (IOException | RuntimeException e) { // one mount's failure must not leave the others mounted
                    LOG.warning("unmounting: " + e);
                }
            }
            mounts.clear();
        }
        sweeper.shutdownNow();
        if (warmup != null) {
            try {
                warmup.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (imageService != null) {
            imageService.close();
        }
        if (snapshotter != null) {
            snapshotter.close();
        }
        if (layerStore != null) {
            try {
                layerStore.close();
            } catch (IOException | RuntimeException e) {
                LOG.warning("unmounting the layer store: " + e);
            }
        }
        images.close();
        if (metrics != null) {
            metrics.close();
        }
        try {
            control.close();
        } catch (IOException e) {
            LOG.warning("closing the control socket: " + e.getMessage());
        }
        peers.close();
        connections.close();
        membership.close();
        try {
            layers.close();
        } catch (IOException e) {
            LOG.warning("closing layers: " + e.getMessage());
        }
        store.close();
        anonymous.close();
        executor.shutdownNow();
        try {
            rootLock.close();
        } catch (IOException e) {
            LOG.warning("releasing the root's lock: " + e.getMessage());
        }
        closed.countDown();
    }
}
