package dev.starling.protocol;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.handler.traffic.GlobalTrafficShapingHandler;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * Serves chunks to peers over TCP: a versioned handshake (cluster id, node id), then many requests
 * on one connection, each answered with a DATA or MISS per chunk, or BUSY when the connection has
 * its limit of requests in flight, or ERROR. A connection that sends what is not the protocol, or
 * goes idle, is closed; the others go on. Uploads share one byte-rate limit per node.
 */
public final class PeerServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(PeerServer.class.getName());

    /**
     * @param maxFrame          largest frame accepted
     * @param maxInFlight       requests one connection may have in flight before BUSY
     * @param idleTimeout       a connection with no traffic this long is closed
     * @param uploadBytesPerSecond cap on what the node sends to all peers together; 0 for none
     * @param tls               mutual TLS with the cluster CA, or null for plain TCP
     */
    public record Settings(String clusterId, String nodeId, int maxFrame, int maxInFlight, Duration idleTimeout,
                           long uploadBytesPerSecond, SslContext tls) {
        public static Settings defaults(String clusterId, String nodeId) {
            return new Settings(clusterId, nodeId, FrameCodec.DEFAULT_MAX_FRAME, 64, Duration.ofSeconds(120), 0, null);
        }

        public Settings withMaxInFlight(int n) {
            return new Settings(clusterId, nodeId, maxFrame, n, idleTimeout, uploadBytesPerSecond, tls);
        }

        public Settings withTls(SslContext context) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, uploadBytesPerSecond, context);
        }

        public Settings withIdleTimeout(Duration idle) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idle, uploadBytesPerSecond, tls);
        }

        public Settings withUploadBytesPerSecond(long rate) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, rate, tls);
        }
    }

    private final EventLoopGroup group;
    private final Channel server;
    private final GlobalTrafficShapingHandler upload;
    private final AtomicLong bytesServed = new AtomicLong();
    private final AtomicLong refusedConnections = new AtomicLong();

    private PeerServer(EventLoopGroup group, Channel server, GlobalTrafficShapingHandler upload) {
        this.group = group;
        this.server = server;
        this.upload = upload;
    }

    public static PeerServer start(InetSocketAddress listen, Settings settings, ChunkProvider provider)
            throws InterruptedException {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        GlobalTrafficShapingHandler upload = settings.uploadBytesPerSecond() > 0
                ? new GlobalTrafficShapingHandler(group.next(), settings.uploadBytesPerSecond(), 0, 100) : null;
        PeerServer[] self = new PeerServer[1];
        try {
            Channel ch = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel c) {
                            if (settings.tls() != null) {
                                c.pipeline().addLast("tls", settings.tls().newHandler(c.alloc()));
                            }
                            if (upload != null) {
                                c.pipeline().addLast("upload-limit", upload);
                            }
                            c.pipeline().addLast("idle", new IdleStateHandler(0, 0,
                                    settings.idleTimeout().toMillis(), TimeUnit.MILLISECONDS));
                            FrameCodec.addTo(c.pipeline(), settings.maxFrame());
                            c.pipeline().addLast("serve", new Connection(settings, provider, self[0]));
                        }
                    }).bind(listen).sync().channel();
            self[0] = new PeerServer(group, ch, upload);
            return self[0];
        } catch (RuntimeException | InterruptedException e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw e;
        }
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) server.localAddress();
    }

    /** Chunk bytes sent to peers so far. */
    public long bytesServed() {
        return bytesServed.get();
    }

    /** Connections closed for a bad handshake or bytes that are not the protocol. */
    public long refusedConnections() {
        return refusedConnections.get();
    }

    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        server.close().syncUninterruptibly();
        if (upload != null) {
            upload.release();
        }
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    }

    /** One peer's connection: handshake first, then requests, each answered on the event loop. */
    private static final class Connection extends SimpleChannelInboundHandler<Frame> {
        private final Settings settings;
        private final ChunkProvider provider;
        private final PeerServer server;
        private boolean greeted;
        private String peer = "a peer";
        private int inFlight;

        Connection(Settings settings, ChunkProvider provider, PeerServer server) {
            this.settings = settings;
            this.provider = provider;
            this.server = server;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Frame frame) {
            if (!greeted) {
                if (frame instanceof Frame.Hello hello && hello.version() == Frame.VERSION
                        && hello.clusterId().equals(settings.clusterId())) {
                    greeted = true;
                    peer = hello.nodeId() + " (" + ctx.channel().remoteAddress() + ")";
                    ctx.writeAndFlush(new Frame.HelloOk(Frame.VERSION, settings.nodeId()));
                    return;
                }
                String why = frame instanceof Frame.Hello hello
                        ? (hello.version() != Frame.VERSION ? "protocol version " + hello.version() + ", this node speaks "
                        + Frame.VERSION : "cluster \"" + hello.clusterId() + "\" is not this node's") : "no handshake";
                refuse(ctx, why);
                return;
            }
            switch (frame) {
                case Frame.Request request -> serve(ctx, request);
                case Frame.Cancel cancel -> {
                    // answers already under way are small and few; they are dropped by the client
                }
                default -> refuse(ctx, "a " + frame.getClass().getSimpleName() + " frame from a requester");
            }
        }

        private void serve(ChannelHandlerContext ctx, Frame.Request request) {
            if (inFlight >= settings.maxInFlight()) {
                ctx.writeAndFlush(new Frame.Busy(request.stream(), 50));
                return;
            }
            inFlight++;
            provider.serve(request).whenComplete((chunks, failure) -> ctx.executor().execute(() -> {
                inFlight--;
                if (failure != null) {
                    Throwable cause = failure instanceof java.util.concurrent.CompletionException c && c.getCause() != null
                            ? c.getCause() : failure;
                    Frame.ErrorCode code = cause instanceof PeerException.Refused r ? r.code() : Frame.ErrorCode.FAILED;
                    ctx.writeAndFlush(new Frame.Error(request.stream(), code, String.valueOf(cause.getMessage())));
                    return;
                }
                List<byte[]> answers = chunks;
                for (int i = 0; i < request.chunks().size(); i++) {
                    byte[] data = i < answers.size() ? answers.get(i) : null;
                    if (data == null) {
                        ctx.write(new Frame.Miss(request.stream(), i));
                    } else {
                        server.bytesServed.addAndGet(data.length);
                        ctx.write(new Frame.Data(request.stream(), i, data));
                    }
                }
                ctx.flush();
            }));
        }

        private void refuse(ChannelHandlerContext ctx, String why) {
            server.refusedConnections.incrementAndGet();
            LOG.warning("closing the connection of " + peer + ": " + why);
            ctx.writeAndFlush(new Frame.Error(0, Frame.ErrorCode.REFUSED, why)).addListener(f -> ctx.close());
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object event) {
            if (event instanceof IdleStateEvent) {
                ctx.close();
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof DecoderException) {
                server.refusedConnections.incrementAndGet();
                LOG.warning("closing the connection of " + peer + ": it sent what is not the protocol ("
                        + cause.getMessage() + ")");
            }
            ctx.close();
        }
    }
}
