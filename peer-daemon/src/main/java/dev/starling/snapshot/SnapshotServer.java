package dev.starling.snapshot;

import dev.starling.fuse.MountOptions;
import dev.starling.layers.ImageResolver;
import io.grpc.Server;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The daemon as containerd's remote snapshotter: the snapshots service on a unix socket (root
 * only), its state under a root directory, remote layers from the node's open layers.
 * containerd's config names the socket as a proxy plugin of type "snapshot".
 */
public final class SnapshotServer implements AutoCloseable {
    private final Server server;
    private final Snapshotter snapshotter;
    private final LazyLayerMounts remote;
    private final EpollEventLoopGroup group;
    private final Path socket;

    private SnapshotServer(Server server, Snapshotter snapshotter, LazyLayerMounts remote, EpollEventLoopGroup group, Path socket) {
        this.server = server;
        this.snapshotter = snapshotter;
        this.remote = remote;
        this.group = group;
        this.socket = socket;
    }

    /** Serves the snapshotter of state {@code root} at {@code socket}, mounting remote layers again as they are used. */
    public static SnapshotServer start(Path socket, Path root, ImageResolver images, MountOptions options,
                                       ExecutorService executor) throws IOException {
        LazyLayerMounts remote = new LazyLayerMounts(images, options);
        Snapshotter snapshotter = new Snapshotter(root, remote, Clock.systemUTC());
        try {
            snapshotter.restore(executor); // orphans go before containerd can prepare anything
        } catch (IOException | RuntimeException e) {
            snapshotter.close();
            throw e;
        }
        EpollEventLoopGroup group = new EpollEventLoopGroup(2);
        Server server;
        try {
            server = UnixGrpc.serve(socket, group, executor, b -> b.addService(new SnapshotService(snapshotter)));
        } catch (IOException | RuntimeException e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            snapshotter.close();
            throw new IOException("cannot serve the containerd snapshotter at " + socket + ": " + e.getMessage(), e);
        }
        return new SnapshotServer(server, snapshotter, remote, group, socket);
    }

    public Path socket() {
        return socket;
    }

    /** The snapshots held, for status. */
    public List<Snapshot> snapshots() {
        return snapshotter.all();
    }

    /** Stops serving and unmounts the remote layers (running containers lose them, as with stargz-snapshotter). */
    @Override
    public void close() {
        server.shutdown();
        try {
            if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
                server.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            server.shutdownNow();
        }
        remote.close();
        snapshotter.close();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            // the next start removes it
        }
    }
}
