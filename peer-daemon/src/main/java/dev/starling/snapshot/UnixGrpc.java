package dev.starling.snapshot;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.Executor;
import java.util.function.UnaryOperator;

/**
 * gRPC over unix sockets, as containerd and kubelet speak it: grpc-netty-shaded's epoll domain
 * sockets (its own Netty, apart from the peers' Netty 4.2).
 */
final class UnixGrpc {
    /** gRPC's Netty sets TCP keep-alive on every connection and warns that a unix socket has none; nothing is wrong. */
    private static final java.util.logging.Logger BOOTSTRAP_LOG =
            java.util.logging.Logger.getLogger("io.grpc.netty.shaded.io.netty.bootstrap.AbstractBootstrap");

    static {
        BOOTSTRAP_LOG.setLevel(java.util.logging.Level.SEVERE);
    }

    private UnixGrpc() {
    }

    /**
     * Serves at {@code socket}, root only; a socket file a killed process left is replaced, one a live
     * process serves is not taken from it.
     *
     * @param services adds the services (or a fallback registry) to the builder
     */
    static Server serve(Path socket, EpollEventLoopGroup group, Executor executor,
                        UnaryOperator<NettyServerBuilder> services) throws IOException {
        Files.createDirectories(socket.toAbsolutePath().getParent());
        if (Files.exists(socket)) {
            try (java.nio.channels.SocketChannel live = java.nio.channels.SocketChannel.open(
                    java.net.UnixDomainSocketAddress.of(socket))) {
                throw new java.net.BindException("a live server already serves " + socket + " (another starling daemon?): "
                        + "stop it first, or give this one another socket");
            } catch (java.net.BindException e) {
                throw e;
            } catch (IOException nobody) {
                // left by a process that died: replaced below
            }
        }
        Files.deleteIfExists(socket);
        Server server = services.apply(NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollServerDomainSocketChannel.class).bossEventLoopGroup(group).workerEventLoopGroup(group)
                .executor(executor)).build().start();
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        return server;
    }

    /** A channel to the server at {@code socket}. */
    static ManagedChannel channel(Path socket, EpollEventLoopGroup group) {
        return NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext().build();
    }
}
