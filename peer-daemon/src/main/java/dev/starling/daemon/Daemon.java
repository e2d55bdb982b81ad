package dev.starling.daemon;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.StoreMount;
import dev.starling.mount.ImageMount;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import dev.starling.snapshot.ImageServiceProxy;
import dev.starling.snapshot.SnapshotServer;
import dev.starling.store.HelperCredentials;
import dev.starling.store.StoreLayerSource;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * The node daemon's life: it takes the root, starts the {@link Node} (chunks, layers, peers), then
 * the front ends that sit on it (the layer store, the containerd snapshotter, the CRI image-service
 * proxy, the control socket, metrics), and stops them in the reverse order. Images mounted through
 * the control socket (`starling mount --socket`) share the node's chunks and peers.
 */
public final class Daemon implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Daemon.class.getName());

    private final DaemonConfig config;
    private final RegistryClient client;
    /** Where `starling store-auth` puts what containers/image hands its auth helper; null when the client does not consult it. */
    private final HelperCredentials helperCredentials;
    /** This daemon's hold on its root: one daemon per disk tier. */
    private final RootLock rootLock;
    private final Node node;
    /** The front ends started, last first: what {@link #close} stops before the node. */
    private final Deque<AutoCloseable> frontEnds = new ArrayDeque<>();
    private final StoreMount layerStore;
    private final SnapshotServer snapshotter;
    private final DaemonMetrics metrics;
    private final ScheduledExecutorService sweeper;
    private final Map<Path, ImageMount> mounts = new LinkedHashMap<>();
    /** Targets whose mount is resolving now (outside the lock). */
    private final java.util.Set<Path> mounting = new java.util.HashSet<>();
    private volatile boolean stopping;
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
        if (config.imageService() != null && helperCredentials == null) {
            throw new IllegalArgumentException("the CRI image-service proxy keeps pulls' credentials: start the daemon with them");
        }
        // a private image's chunks, TOCs and mounts are under the root: no other local user passes it
        dev.starling.fetch.OwnerOnly.directories(config.root());
        this.rootLock = RootLock.acquire(config.root());
        try {
            refuseLiveSockets(config); // before anything is started or mounted that a refusal would leave behind
            warnIfOpen(config);
            this.node = Node.start(config, client);
            this.sweeper = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "starling-store-sweep");
                t.setDaemon(true);
                return t;
            });
            frontEnds.push(sweeper::shutdownNow);
            DaemonConfig.Store storeConfig = config.store();
            Duration storeTtl = storeConfig == null ? DaemonConfig.Store.DEFAULT_TTL : storeConfig.ttl();
            this.layerStore = storeConfig == null ? null : started(StoreMount.mount(new StoreLayerSource(node.images),
                    storeConfig.mountPoint(), MountOptions.DEFAULTS, storeTtl, System::nanoTime));
            this.snapshotter = config.containerdSocket() == null ? null : started(SnapshotServer.start(config.containerdSocket(),
                    config.root().resolve("snapshotter"), node.images, MountOptions.DEFAULTS, node.executor));
            if (config.imageService() != null) {
                started(ImageServiceProxy.start(config.imageService().listen(), config.imageService().containerd(),
                        helperCredentials, node.executor));
            }
            long sweepMillis = Math.clamp(storeTtl.toMillis() / 4, 250, 30_000);
            sweeper.scheduleWithFixedDelay(this::sweepStore, sweepMillis, sweepMillis, TimeUnit.MILLISECONDS);
            if (config.warmup()) {
                warmupState = "running";
                warmup = new Thread(() -> warmupState = Warmup.run(config.root().resolve("warmup"), () -> stopping) ? "done" : "failed",
                        "starling-warmup");
                warmup.setDaemon(true);
                warmup.setPriority(Thread.MIN_PRIORITY);
                warmup.start();
            }
            ControlRequests requests = new ControlRequests(this);
            started(ControlSocket.listen(config.socket(), requests::handle));
            this.metrics = config.metricsListen() == null ? null
                    : started(listening("--metrics-listen", config.metricsListen(), () -> new DaemonMetrics(node, config.metricsListen())));
        } catch (IOException | InterruptedException | RuntimeException e) {
            close(); // a half-done start leaves nothing running, mounted or locked
            throw e;
        }
    }

    private <T extends AutoCloseable> T started(T frontEnd) {
        frontEnds.push(frontEnd);
        return frontEnd;
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
    interface Binding<T> {
        T bind() throws IOException, InterruptedException;
    }

    /** Binds, saying which option named an address that is taken. */
    static <T> T listening(String option, InetSocketAddress address, Binding<T> binding) throws IOException, InterruptedException {
        try {
            return binding.bind();
        } catch (java.net.BindException e) {
            throw new IOException(option + " " + DaemonConfig.address(address) + ": address already in use (another "
                    + "starling daemon, or another program, listens there): stop it, or give " + option + " another address", e);
        }
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
            node.images.sweep();
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
        return node.peerAddress();
    }

    /** Blocks until {@link #close}. */
    public void awaitClose() throws InterruptedException {
        closed.await();
    }

    ObjectNode addCredentials(JsonNode helperInput) throws IOException {
        if (helperCredentials == null) {
            return ControlRequests.fail("this daemon takes no credentials from the layer store's auth helper");
        }
        return ControlRequests.ok().put("references", helperCredentials.add(helperInput));
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
            node.mounting(ref);
            mount = ImageMount.mount(client, ref, platform == null ? null : Descriptor.Platform.parse(platform), normalized,
                    work, node.layers, MountOptions.DEFAULTS);
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
        return ControlRequests.ok().put("target", normalized.toString()).put("layers", mount.layerCount())
                .put("readyMillis", (System.nanoTime() - t0) / 1_000_000).put("bytesAtReady", mount.bytesAtReady());
    }

    synchronized ObjectNode umount(Path target) throws IOException {
        ImageMount mount = mounts.remove(target.toAbsolutePath().normalize());
        if (mount == null) {
            throw new IOException("this daemon has nothing mounted at " + target);
        }
        mount.close();
        return ControlRequests.ok().put("target", target.toString());
    }

    /** What `starling status` shows ({@link StatusDocument}). */
    public synchronized ObjectNode status() {
        return StatusDocument.of(node, warmupState, mounts.keySet(), snapshotter, layerStore);
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
        if (warmup != null) {
            try {
                warmup.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        while (!frontEnds.isEmpty()) {
            AutoCloseable frontEnd = frontEnds.pop();
            try {
                frontEnd.close();
            } catch (Exception e) { // one front end's failure must not leave the others up
                LOG.warning("stopping " + frontEnd.getClass().getSimpleName() + ": " + e.getMessage());
            }
        }
        if (node != null) {
            node.close();
        }
        try {
            rootLock.close();
        } catch (IOException e) {
            LOG.warning("releasing the root's lock: " + e.getMessage());
        }
        closed.countDown();
    }
}
