package dev.starling.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starling.cri.ContainerConfig;
import dev.starling.cri.ContainerMetadata;
import dev.starling.cri.ContainerState;
import dev.starling.cri.ContainerStatus;
import dev.starling.cri.ContainerStatusRequest;
import dev.starling.cri.CreateContainerRequest;
import dev.starling.cri.ImageServiceGrpc;
import dev.starling.cri.ImageSpec;
import dev.starling.cri.LinuxPodSandboxConfig;
import dev.starling.cri.LinuxSandboxSecurityContext;
import dev.starling.cri.NamespaceMode;
import dev.starling.cri.NamespaceOption;
import dev.starling.cri.PodSandboxConfig;
import dev.starling.cri.PodSandboxMetadata;
import dev.starling.cri.PullImageRequest;
import dev.starling.cri.RemovePodSandboxRequest;
import dev.starling.cri.RunPodSandboxRequest;
import dev.starling.cri.RuntimeServiceGrpc;
import dev.starling.cri.StartContainerRequest;
import dev.starling.cri.StopPodSandboxRequest;
import dev.starling.cri.VersionRequest;
import dev.starling.daemon.DaemonConfig;
import dev.starling.daemon.DaemonProcess;
import dev.starling.estargz.write.ConvertOptions;
import dev.starling.mount.EStargzImages;
import dev.starling.registry.ImageReference;
import dev.starling.registry.LocalRegistry;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Kubernetes path: containerd's CRI plugin driven over its socket as kubelet drives it (Version,
 * PullImage, RunPodSandbox with host networking so no CNI is needed, CreateContainer,
 * StartContainer, ContainerStatus, the container's log), with the daemon as the CRI's snapshotter:
 * the eStargz image is pulled lazily (no layer downloaded by containerd) and the container prints
 * its files.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class KubeletPathTest {
    @TempDir
    Path dir;

    @Test
    void aPodRunsAnImagePulledLazilyThroughTheCriPlugin() throws Exception {
        Path tree = EStargzImages.busyboxTree(dir.resolve("tree"), "sh", "cat", "sleep");
        Files.createDirectories(tree.resolve("data"));
        Files.writeString(tree.resolve("data/hello.txt"), "hello from a pod\n");
        EStargzImages.Layer esgz = EStargzImages.convert(tree, dir.resolve("layer.esgz"), ConvertOptions.defaults());
        EStargzImages.Layer pause = EStargzImages.plain(tree, dir.resolve("pause.tar.gz"));
        String lazyLayer = Manifest.sha256(Files.readAllBytes(esgz.blob()));
        Path socket = dir.resolve("sn.sock");
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.NONE)) {
            ImageReference image = registry.ref("pods/app:esgz");
            ImageReference sandbox = registry.ref("pods/pause:v1"); // the pod's sandbox image: there is no registry.k8s.io here
            try (RegistryClient client = RegistryClient.anonymous()) {
                EStargzImages.push(client, image, List.of(esgz));
                EStargzImages.push(client, sandbox, List.of(pause), List.of("/bin/sleep", "3600"));
            }
            List<String> options = List.of("--peer-listen", "127.0.0.1:" + DaemonConfig.freePortPair(), "--no-store",
                    "--containerd-socket", socket.toString(), "--insecure-registry", registry.host(), "--cache-size", "256M");
            // restrict_oom_score_adj: the sandbox asks for an OOM score of -998, which needs CAP_SYS_RESOURCE, which
            // this machine's root lacks (podman's ulimits fail the same way); the setting keeps the score at containerd's own
            String criKeys = "sandbox_image = \"" + sandbox + "\"\nrestrict_oom_score_adj = true";
            String mirrors = """
                    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."%s"]
                      endpoint = ["http://%s"]
                    """.formatted(registry.host(), registry.host());
            EpollEventLoopGroup group = new EpollEventLoopGroup(1);
            try (DaemonProcess daemon = DaemonProcess.start(dir, "node", options).awaitReady();
                 Containerd containerd = Containerd.start(dir.resolve("ctd"), socket, criKeys, mirrors)) {
                ManagedChannel channel = UnixGrpc.channel(containerd.socket(), group);
                try {
                    RuntimeServiceGrpc.RuntimeServiceBlockingStub runtime = RuntimeServiceGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(120, TimeUnit.SECONDS);
                    ImageServiceGrpc.ImageServiceBlockingStub images = ImageServiceGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(120, TimeUnit.SECONDS);
                    assertEquals("containerd", runtime.version(VersionRequest.newBuilder().setVersion("v1").build()).getRuntimeName());

                    images.pullImage(PullImageRequest.newBuilder().setImage(ImageSpec.newBuilder().setImage(image.toString())).build());
                    assertTrue(registry.requests().stream().noneMatch(r -> r.isBlobGet(lazyLayer) && !r.userAgent().startsWith("starling/")),
                            "the CRI pull downloaded none of the eStargz layer");
                    JsonNode snapshots = daemon.status().path("snapshotter").path("snapshots");
                    assertTrue(snapshots.size() == 1 && snapshots.get(0).path("remote").asBoolean(),
                            "the CRI's labels reached the snapshotter: the layer is a remote snapshot: " + snapshots + "\n" + daemon.log());

                    assertEquals("hello from a pod", runPod(runtime, image, Files.createDirectories(dir.resolve("pod-logs"))),
                            "the pod's container printed the image's file");
                } finally {
                    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
                }
            } finally {
                group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            }
        }
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
        assertTrue(!mountinfo.contains(dir.toString()), "nothing left mounted under " + dir);
    }
    /**
     * kubelet's image pull secret reaches the snapshotter through the CRI image-service proxy: a
     * private image pulled straight from containerd falls back to a download (the daemon has no
     * credentials), the same kind of image pulled through the proxy with its AuthConfig is lazy.
     */
    @Test
    void aPrivateImageIsLazyWhenItsPullComesThroughTheImageServiceProxy() throws Exception {
        Path tree = EStargzImages.busyboxTree(dir.resolve("tree"), "sh", "cat", "sleep");
        Files.createDirectories(tree.resolve("data"));
        Files.writeString(tree.resolve("data/hello.txt"), "direct\n");
        EStargzImages.Layer direct = EStargzImages.convert(tree, dir.resolve("direct.esgz"), ConvertOptions.defaults());
        Files.writeString(tree.resolve("data/hello.txt"), "through the proxy\n");
        EStargzImages.Layer proxied = EStargzImages.convert(tree, dir.resolve("proxied.esgz"), ConvertOptions.defaults());
        EStargzImages.Layer pause = EStargzImages.plain(tree, dir.resolve("pause.tar.gz"));
        Path socket = dir.resolve("sn.sock");
        Path proxy = dir.resolve("images.sock");
        try (LocalRegistry registry = LocalRegistry.start(LocalRegistry.Auth.HTPASSWD)) {
            ImageReference first = registry.ref("private/app:direct");
            ImageReference second = registry.ref("private/app:proxied");
            ImageReference sandbox = registry.ref("private/pause:v1");
            try (RegistryClient client = new RegistryClient(RegistryClient.Settings.defaults().withCredentials(
                    dev.starling.registry.CredentialProvider.of(registry.host(),
                            dev.starling.registry.Credentials.basic(LocalRegistry.USER, LocalRegistry.PASSWORD))))) {
                EStargzImages.push(client, first, List.of(direct));
                EStargzImages.push(client, second, List.of(proxied));
                EStargzImages.push(client, sandbox, List.of(pause), List.of("/bin/sleep", "3600"));
            }
            Path ctd = dir.resolve("ctd");
            List<String> options = List.of("--peer-listen", "127.0.0.1:" + DaemonConfig.freePortPair(), "--no-store",
                    "--containerd-socket", socket.toString(), "--insecure-registry", registry.host(), "--cache-size", "256M",
                    "--image-service-socket", proxy.toString(), "--containerd-cri-socket", ctd.resolve("containerd.sock").toString());
            String criKeys = "sandbox_image = \"" + sandbox + "\"\nrestrict_oom_score_adj = true";
            // containerd's own credentials, for the sandbox image: the daemon has none but what the proxy hands it
            String registryTables = """
                    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."%1$s"]
                      endpoint = ["http://%1$s"]
                    [plugins."io.containerd.grpc.v1.cri".registry.configs."%1$s".auth]
                      username = "%2$s"
                      password = "%3$s"
                    """.formatted(registry.host(), LocalRegistry.USER, LocalRegistry.PASSWORD);
            EpollEventLoopGroup group = new EpollEventLoopGroup(1);
            try (DaemonProcess daemon = DaemonProcess.start(dir, "node", options).awaitReady();
                 Containerd containerd = Containerd.start(ctd, socket, criKeys, registryTables)) {
                ManagedChannel toContainerd = UnixGrpc.channel(containerd.socket(), group);
                ManagedChannel toProxy = UnixGrpc.channel(proxy, group);
                try {
                    ImageServiceGrpc.newBlockingStub(toContainerd).withDeadlineAfter(120, TimeUnit.SECONDS)
                            .pullImage(PullImageRequest.newBuilder().setImage(ImageSpec.newBuilder().setImage(first.toString())).build());
                    assertEquals(0, remoteSnapshots(daemon), "pulled without the proxy, the daemon could not read the "
                            + "private layer lazily: containerd downloaded it");
                    ImageServiceGrpc.newBlockingStub(toProxy).withDeadlineAfter(120, TimeUnit.SECONDS)
                            .pullImage(PullImageRequest.newBuilder().setImage(ImageSpec.newBuilder().setImage(second.toString()))
                                    .setAuth(dev.starling.cri.AuthConfig.newBuilder().setUsername(LocalRegistry.USER)
                                            .setPassword(LocalRegistry.PASSWORD)).build());
                    assertEquals(1, remoteSnapshots(daemon), "through the proxy the pull's credentials reached the "
                            + "snapshotter, and the layer is lazy: " + daemon.log());
                    assertEquals("through the proxy", runPod(RuntimeServiceGrpc.newBlockingStub(toContainerd)
                            .withDeadlineAfter(120, TimeUnit.SECONDS), second, Files.createDirectories(dir.resolve("pod-logs"))));
                } finally {
                    toContainerd.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
                    toProxy.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
                }
            } finally {
                group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            }
        }
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
        assertTrue(!mountinfo.contains(dir.toString()), "nothing left mounted under " + dir);
    }

    private static int remoteSnapshots(DaemonProcess daemon) throws Exception {
        int n = 0;
        for (JsonNode s : daemon.status().path("snapshotter").path("snapshots")) {
            n += s.path("remote").asBoolean() ? 1 : 0;
        }
        return n;
    }

    /** Runs {@code cat /data/hello.txt} of {@code image} in a host-network pod, as kubelet would; returns what it printed. */
    private static String runPod(RuntimeServiceGrpc.RuntimeServiceBlockingStub runtime, ImageReference image, Path logs)
            throws Exception {
        PodSandboxConfig pod = PodSandboxConfig.newBuilder()
                .setMetadata(PodSandboxMetadata.newBuilder().setName("pod-" + image.tag()).setUid("uid-" + image.tag())
                        .setNamespace("default"))
                .setLogDirectory(logs.toString())
                .setLinux(LinuxPodSandboxConfig.newBuilder().setSecurityContext(LinuxSandboxSecurityContext.newBuilder()
                        .setNamespaceOptions(NamespaceOption.newBuilder().setNetwork(NamespaceMode.NODE)
                                .setPid(NamespaceMode.CONTAINER).setIpc(NamespaceMode.POD))))
                .build();
        String podId = runtime.runPodSandbox(RunPodSandboxRequest.newBuilder().setConfig(pod).build()).getPodSandboxId();
        try {
            String containerId = runtime.createContainer(CreateContainerRequest.newBuilder().setPodSandboxId(podId)
                    .setSandboxConfig(pod).setConfig(ContainerConfig.newBuilder()
                            .setMetadata(ContainerMetadata.newBuilder().setName("app"))
                            .setImage(ImageSpec.newBuilder().setImage(image.toString()))
                            .addAllCommand(List.of("cat", "/data/hello.txt")).setLogPath("app.log"))
                    .build()).getContainerId();
            runtime.startContainer(StartContainerRequest.newBuilder().setContainerId(containerId).build());
            ContainerStatus status = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                status = runtime.containerStatus(ContainerStatusRequest.newBuilder().setContainerId(containerId).build()).getStatus();
                if (status.getState() == ContainerState.CONTAINER_EXITED) {
                    break;
                }
                Thread.sleep(200);
            }
            assertEquals(ContainerState.CONTAINER_EXITED, status.getState(), status.toString());
            assertEquals(0, status.getExitCode(), status.toString());
            // CRI log lines: "<time> stdout F <text>"
            return Files.readAllLines(logs.resolve("app.log")).stream().map(l -> l.split(" ", 4))
                    .filter(f -> f.length == 4 && f[1].equals("stdout")).map(f -> f[3]).collect(Collectors.joining("\n"));
        } finally {
            runtime.stopPodSandbox(StopPodSandboxRequest.newBuilder().setPodSandboxId(podId).build());
            runtime.removePodSandbox(RemovePodSandboxRequest.newBuilder().setPodSandboxId(podId).build());
        }
    }
}
