package dev.starling.cli;

import dev.starling.daemon.Daemon;
import dev.starling.daemon.DaemonConfig;
import dev.starling.registry.RegistryClient;
import dev.starling.store.HelperCredentials;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import dev.starling.peer.PeerAccess;

/** {@code starling daemon}: the node daemon, serving mounts and peers until SIGTERM. */
@Command(name = "daemon", mixinStandardHelpOptions = true,
        description = {"Run the node daemon: one chunk store for every mount on this node, chunks fetched from",
                "peers first and the registry last, and this node's chunks served to its peers.",
                "Mount through it with `starling mount --socket PATH IMAGE DIR`; see it with `starling status`.",
                "With no options it runs as one node."})
final class DaemonCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--config", paramLabel = "FILE",
            description = "a YAML file of these options (keys as the option names without dashes, e.g. peer-listen, "
                    + "join: [a:7400, b:7400], tls: {keystore, truststore, password-file}); options given here win")
    Path config;

    @Option(names = "--root", paramLabel = "DIR", description = "state: disk tier, mounts (default: ${DEFAULT-VALUE})")
    Path root = DaemonConfig.DEFAULT_ROOT;

    @Option(names = "--socket", paramLabel = "PATH", description = "control socket (default: ${DEFAULT-VALUE})")
    Path socket = DaemonConfig.DEFAULT_SOCKET;

    @Option(names = "--peer-listen", paramLabel = "HOST:PORT",
            description = "where peers reach this node's chunks; also this node's id in the others' --join lists "
                    + "(default: 127.0.0.1:7400)")
    String peerListen = "127.0.0.1:" + DaemonConfig.DEFAULT_PEER_PORT;

    @Option(names = "--advertise", paramLabel = "HOST:PORT",
            description = "where the others reach this node's peer port, and so its id in their --join lists (default: "
                    + "$POD_IP in a pod, else --peer-listen, or for 0.0.0.0 the address the route to the first peer leaves from)")
    String advertise;

    @Option(names = "--join", paramLabel = "HOST:PORT", split = ",",
            description = "the peers' --peer-listen addresses (this node's own may be listed, so one list serves all); "
                    + "membership (SWIM) runs on each one's port + 1")
    List<String> join = List.of();

    @Option(names = "--join-dns", paramLabel = "NAME",
            description = "a DNS name whose addresses are the peers (a Kubernetes headless Service), each at this "
                    + "node's peer port; resolved at start, waiting up to a minute for it to name anyone")
    String joinDns;

    @Option(names = "--zone", paramLabel = "NAME", description = "this node's zone: owners in it are asked first")
    String zone = "";

    @Option(names = "--cluster-id", paramLabel = "ID", description = "peers of another cluster are refused (default: ${DEFAULT-VALUE})")
    String clusterId = "starling";

    @Option(names = "--allow-registry", paramLabel = "HOST[:PORT]", split = ",",
            description = "registries this node fetches from on a peer's behalf, besides those of images mounted here")
    List<String> allowRegistries = List.of();

    @Option(names = "--cache-size", paramLabel = "SIZE", converter = Sizes.LongConverter.class,
            description = "disk tier bound (default: half the space of the root's file system)")
    Long cacheSize;

    @Option(names = "--memory-tier", paramLabel = "SIZE", converter = Sizes.LongConverter.class,
            description = "what the memory tier holds at most: chunks read ahead or partly read, not yet in the page cache "
                    + "(default: 64M; it is heap, so keep it well under the heap limit)")
    long memoryTier = DaemonConfig.DEFAULT_MEMORY_TIER_BYTES;

    @Option(names = "--warmup", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "run the read path once over a layer of its own right after start, so the first image is "
                    + "served by compiled code (default: on)")
    boolean warmup = true;

    @Option(names = "--metrics-listen", paramLabel = "HOST:PORT",
            description = "serve Prometheus metrics at http://HOST:PORT/metrics (default: none)")
    String metricsListen;

    @Option(names = "--tls-keystore", paramLabel = "FILE",
            description = "mutual TLS between peers: this node's PKCS#12 key and CA-signed certificate")
    Path tlsKeyStore;

    @Option(names = "--tls-truststore", paramLabel = "FILE", description = "the cluster CA's certificate, PKCS#12")
    Path tlsTrustStore;

    @Option(names = "--tls-password-file", paramLabel = "FILE", description = "the stores' password (one line)")
    Path tlsPasswordFile;

    @Option(names = "--store", paramLabel = "DIR",
            description = "serve the Additional Layer Store for CRI-O and Podman here: storage.conf's "
                    + "additionallayerstores = [\"DIR:ref\"] (default: ROOT/store, /var/lib/starling/store)")
    Path store;

    @Option(names = "--no-store", description = "serve no Additional Layer Store")
    boolean noStore;

    @Option(names = "--store-ttl", paramLabel = "DURATION", converter = Sizes.DurationConverter.class,
            description = "how long the store keeps a layer open after its last user (e.g. 90s, 2m; default: 2m)")
    java.time.Duration storeTtl = DaemonConfig.Store.DEFAULT_TTL;

    @Option(names = "--containerd-socket", paramLabel = "PATH",
            description = "serve containerd's snapshots API here, as the proxy snapshotter \"starling\" "
                    + "(default: ${DEFAULT-VALUE})")
    Path containerdSocket = DaemonConfig.DEFAULT_CONTAINERD_SOCKET;

    @Option(names = "--no-containerd", description = "serve no containerd snapshotter")
    boolean noContainerd;

    @Option(names = "--image-service-socket", paramLabel = "PATH",
            description = "serve the CRI image-service proxy here for kubelet's --image-service-endpoint: pulls go on to "
                    + "containerd, their credentials are kept for the snapshotter (default: none)")
    Path imageServiceSocket;

    @Option(names = "--containerd-cri-socket", paramLabel = "PATH",
            description = "containerd's CRI socket, where the image-service proxy sends every call (default: ${DEFAULT-VALUE})")
    Path containerdCriSocket = DaemonConfig.ImageService.DEFAULT_CONTAINERD;

    @Option(names = "--upload-rate", paramLabel = "SIZE", converter = Sizes.LongConverter.class,
            description = "what this node sends to all its peers together, per second (e.g. 500M; default: 0, no cap): "
                    + "keeps a serving node's uplink for its own work")
    long uploadRate;

    @Option(names = "--upload-slots", paramLabel = "N",
            description = "answers this node sends its peers at once (default: ${DEFAULT-VALUE}; 0: no bound); past it a "
                    + "request is told BUSY with the span's other holders, so a hot span spreads through the nodes that have it")
    int uploadSlots = DaemonConfig.DEFAULT_UPLOAD_SLOTS;

    @Option(names = "--hedge-after", paramLabel = "DURATION", converter = Sizes.DurationConverter.class,
            description = "how long a span's owner may take before the next peer is asked too, for what it holds "
                    + "(e.g. 1s, 500ms; default: 1s; 5s or more: no hedging)")
    java.time.Duration hedgeAfter = DaemonConfig.DEFAULT_HEDGE_AFTER;

    @Option(names = "--peer-access", paramLabel = "POLICY", converter = PeerAccessConverter.class,
            description = "who may read which blob over the peer port: public (default: only blobs the registry gives "
                    + "anyone are shared; private images never leave the node) or cluster (every blob, to peers that "
                    + "prove a cluster certificate; needs the --tls-* options)")
    PeerAccess.Mode peerAccess = PeerAccess.Mode.PUBLIC;

    static final class PeerAccessConverter implements picocli.CommandLine.ITypeConverter<PeerAccess.Mode> {
        @Override
        public PeerAccess.Mode convert(String value) {
            return PeerAccess.Mode.parse(value);
        }
    }

    @Option(names = "--store-auth-file", paramLabel = "FILE",
            description = "keep the credentials `starling store-auth` hands the daemon in this root-only file too, so a "
                    + "restarted daemon resolves private images before the next pull (default: memory only)")
    Path storeAuthFile;

    @Mixin
    RegistryOptions registry = new RegistryOptions();

    private DaemonConfig.Tls tls() throws java.io.IOException {
        if (tlsKeyStore == null && tlsTrustStore == null) {
            return null;
        }
        if (tlsKeyStore == null || tlsTrustStore == null || tlsPasswordFile == null) {
            throw new IllegalArgumentException("TLS needs all of --tls-keystore, --tls-truststore and --tls-password-file");
        }
        return new DaemonConfig.Tls(tlsKeyStore, tlsTrustStore,
                java.nio.file.Files.readString(tlsPasswordFile).strip().toCharArray());
    }

    /**
     * Under systemd ({@code Type=notify}), says the daemon is ready: the store is mounted and the
     * socket answers, so CRI-O (ordered after it) finds the store. The JDK has no datagram Unix
     * sockets, so {@code systemd-notify} says it; the unit sets {@code NotifyAccess=all} for that.
     */
    private static void notifySystemdReady() {
        if (System.getenv("NOTIFY_SOCKET") == null) {
            return;
        }
        try {
            Process p = new ProcessBuilder("systemd-notify", "--ready", "--pid=" + ProcessHandle.current().pid())
                    .redirectErrorStream(true).start();
            if (!p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS) || p.exitValue() != 0) {
                System.err.println("starling: systemd-notify --ready failed: " + new String(p.getInputStream().readAllBytes()));
            }
        } catch (java.io.IOException e) {
            System.err.println("starling: cannot tell systemd the daemon is ready: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static InetSocketAddress address(String text, String option) {
        int colon = text.lastIndexOf(':');
        if (colon <= 0 || colon == text.length() - 1) {
            throw new IllegalArgumentException(option + " takes HOST:PORT, not \"" + text + "\"");
        }
        try {
            int port = Integer.parseInt(text.substring(colon + 1));
            if (port < 0 || port > 65535) {
                throw new NumberFormatException();
            }
            return new InetSocketAddress(text.substring(0, colon), port);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes HOST:PORT with a port 0-65535, not \"" + text + "\"");
        }
    }

    /** The addresses a DNS name has now, each at {@code port}; waits a minute for the name to have any (pods start together). */
    static List<InetSocketAddress> resolve(String name, int port) throws InterruptedException {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                List<InetSocketAddress> out = new ArrayList<>();
                for (java.net.InetAddress a : java.net.InetAddress.getAllByName(name)) {
                    out.add(new InetSocketAddress(a.getHostAddress(), port));
                }
                return out;
            } catch (java.net.UnknownHostException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalArgumentException("--join-dns " + name + " names no address after a minute ("
                            + e.getMessage() + "); check the Service and its selector");
                }
                Thread.sleep(2000);
            }
        }
    }

    /** Sets every option the command line did not give from the YAML file; an unknown key is an error, not ignored. */
    private void applyConfigFile() throws java.io.IOException {
        com.fasterxml.jackson.databind.JsonNode yaml;
        try {
            yaml = new com.fasterxml.jackson.databind.ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory())
                    .readTree(config.toFile());
        } catch (java.io.IOException e) {
            throw new java.io.IOException("--config " + config + ": " + e.getMessage(), e);
        }
        if (yaml == null || !yaml.isObject()) {
            throw new IllegalArgumentException("--config " + config + " is not a YAML mapping of options");
        }
        picocli.CommandLine.ParseResult given = spec.commandLine().getParseResult();
        for (var field : yaml.properties()) {
            String key = field.getKey();
            com.fasterxml.jackson.databind.JsonNode v = field.getValue();
            if (key.equals("tls")) {
                setIfAbsent(given, "--tls-keystore", v.path("keystore"));
                setIfAbsent(given, "--tls-truststore", v.path("truststore"));
                setIfAbsent(given, "--tls-password-file", v.path("password-file"));
                continue;
            }
            if (spec.findOption("--" + key) == null || key.equals("config")) {
                throw new IllegalArgumentException("--config " + config + ": unknown key \"" + key + "\" (keys are the "
                        + "daemon's options without dashes; see `starling daemon --help`)");
            }
            setIfAbsent(given, "--" + key, v);
        }
    }

    /**
     * A file's option that the command line turns off by giving its opposite: a shared daemon.yaml
     * that sets a store, under a unit that runs the daemon with --no-store, means no store.
     */
    private static final java.util.Map<String, String> OVERRIDDEN_BY = java.util.Map.of(
            "--store", "--no-store", "--store-ttl", "--no-store", "--store-auth-file", "--no-store",
            "--no-store", "--store", "--containerd-socket", "--no-containerd", "--no-containerd", "--containerd-socket");

    private void setIfAbsent(picocli.CommandLine.ParseResult given, String option, com.fasterxml.jackson.databind.JsonNode v) {
        if (v.isMissingNode() || given.hasMatchedOption(option)
                || OVERRIDDEN_BY.containsKey(option) && given.hasMatchedOption(OVERRIDDEN_BY.get(option))) {
            return;
        }
        picocli.CommandLine.Model.OptionSpec o = spec.findOption(option);
        if (o == null) {
            throw new IllegalArgumentException("--config " + config + ": unknown key for " + option);
        }
        String text = v.isArray() ? String.join(",", java.util.stream.StreamSupport.stream(v.spliterator(), false)
                .map(com.fasterxml.jackson.databind.JsonNode::asText).toList()) : v.asText();
        o.setValue(convert(o, text));
    }

    private static Object convert(picocli.CommandLine.Model.OptionSpec o, String text) {
        Class<?> type = o.type();
        if (type == Path.class) {
            return Path.of(text);
        }
        if (type == java.time.Duration.class) {
            return new Sizes.DurationConverter().convert(text);
        }
        if (type == boolean.class || type == Boolean.class) {
            return Boolean.parseBoolean(text);
        }
        if (type == Long.class || type == long.class) {
            return new Sizes.LongConverter().convert(text);
        }
        if (List.class.isAssignableFrom(type)) {
            return List.of(text.split(","));
        }
        return text;
    }

    @Override
    public Integer call() throws Exception {
        if (config != null) {
            applyConfigFile();
        }
        if (noStore && store != null) {
            throw new IllegalArgumentException("--store and --no-store contradict each other");
        }
        if (cacheSize != null && cacheSize <= 0) {
            throw new IllegalArgumentException("--cache-size must be more than 0, not " + cacheSize);
        }
        List<InetSocketAddress> peers = new ArrayList<>();
        for (String j : join) {
            peers.add(address(j, "--join"));
        }
        InetSocketAddress listen = address(peerListen, "--peer-listen");
        if (joinDns != null) {
            peers.addAll(resolve(joinDns, listen.getPort()));
        }
        DaemonConfig config = new DaemonConfig(root, socket, listen, peers, zone, clusterId,
                Set.copyOf(allowRegistries), cacheSize,
                metricsListen == null ? null : address(metricsListen, "--metrics-listen"), tls(),
                noStore ? null : new DaemonConfig.Store(store != null ? store : root.resolve(DaemonConfig.STORE_DIRECTORY), storeTtl),
                noContainerd ? null : containerdSocket,
                imageServiceSocket == null ? null : new DaemonConfig.ImageService(imageServiceSocket, containerdCriSocket),
                uploadRate, hedgeAfter, memoryTier, warmup, peerAccess, advertise != null ? address(advertise, "--advertise")
                        : DaemonConfig.defaultAdvertise(listen, peers, System.getenv("POD_IP")), uploadSlots);
        Privileges.requireMountPrivileges();
        HelperCredentials helper = storeAuthFile == null ? HelperCredentials.inMemory() : HelperCredentials.persistedIn(storeAuthFile);
        RegistryClient.Settings settings = registry.settings();
        try (RegistryClient client = new RegistryClient(settings.withCredentials(helper.before(settings.credentials())));
             Daemon daemon = Daemon.start(config, client, helper)) {
            System.out.println("starling daemon " + config.nodeId() + " (cluster " + clusterId + ", " + (peers.size())
                    + " peer address(es)) serving peers at " + daemon.peerAddress() + ", control socket " + socket
                    + (daemon.storeMountPoint() == null ? "" : ", layer store at " + daemon.storeMountPoint())
                    + (config.containerdSocket() == null ? "" : ", containerd snapshotter at " + config.containerdSocket())
                    + (daemon.metricsAddress() == null ? "" : ", metrics at http:/" + daemon.metricsAddress() + "/metrics"));
            System.out.flush();
            notifySystemdReady();
            Runtime.getRuntime().addShutdownHook(new Thread(daemon::close, "starling-daemon-stop"));
            daemon.awaitClose();
        }
        return 0;
    }
}
