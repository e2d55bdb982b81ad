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
import java.util.concurrent.CompletableFuture;
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
    /**
     * How often a request still being worked on is said to be (a {@link Frame.Working} frame): well
     * inside any requester's timeout of silence, so a fill from a slow registry is waited for and a
     * dead server is not.
     */
    public static final Duration WORKING_EVERY = Duration.ofMillis(500);
    /**
     * How long a request is said to be worked on at most: a fill is bounded by the registry's own
     * timeouts (30 s without a byte), so a server still "working" after this is stuck, and its
     * requester should go elsewhere after its own timeout of silence.
     */
    public static final Duration WORKING_FOR = Duration.ofSeconds(30);
    private static final Logger LOG = Logger.getLogger(PeerServer.class.getName());

    /**
     * @param maxFrame          largest frame accepted: a request, never a chunk ({@link FrameCodec#MAX_REQUEST_FRAME})
     * @param maxInFlight       requests one connection may have in flight before BUSY
     * @param idleTimeout       a connection with no traffic this long is closed
     * @param uploadBytesPerSecond cap on what the node sends to all peers together; 0 for none
     * @param tls               mutual TLS with the cluster CA, or null for plain TCP
     * @param handshakeTimeout  a connection that has not said HELLO this long after it opened is closed
     * @param frameDeadline     a frame that began must be complete within this (slow senders hold buffers)
     * @param maxConnectionsPerAddress connections one address may hold open at once (a peer needs one)
     * @param maxConnections    connections open at once, from everyone
     * @param peerRequestsPerSecond requests one address may make per second; 0 for no bound
     * @param peerBytesPerSecond bytes one address may be served per second; 0 for no bound
     * @param uploadSlots       answers being sent at once, to everyone; past it BUSY naming the span's
     *                          holders, so a hot span spreads through the nodes that have it; 0 for no bound
     */
    public record Settings(String clusterId, String nodeId, int maxFrame, int maxInFlight, Duration idleTimeout,
                           long uploadBytesPerSecond, SslContext tls, Duration handshakeTimeout, Duration frameDeadline,
                           int maxConnectionsPerAddress, int maxConnections, long peerRequestsPerSecond,
                           long peerBytesPerSecond, int uploadSlots) {
        public static Settings defaults(String clusterId, String nodeId) {
            return new Settings(clusterId, nodeId, FrameCodec.MAX_REQUEST_FRAME, 64, Duration.ofSeconds(120), 0, null,
                    Duration.ofSeconds(10), Duration.ofSeconds(10), 16, 1024, 2_000, 1L << 30, 0);
        }

        public Settings withUploadSlots(int slots) {
            if (slots < 0) {
                throw new IllegalArgumentException("upload slots are 0 (no bound) or more, not " + slots);
            }
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, uploadBytesPerSecond, tls, handshakeTimeout,
                    frameDeadline, maxConnectionsPerAddress, maxConnections, peerRequestsPerSecond, peerBytesPerSecond, slots);
        }

        public Settings withMaxInFlight(int n) {
            return new Settings(clusterId, nodeId, maxFrame, n, idleTimeout, uploadBytesPerSecond, tls, handshakeTimeout,
                    frameDeadline, maxConnectionsPerAddress, maxConnections, peerRequestsPerSecond, peerBytesPerSecond, uploadSlots);
        }

        public Settings withTls(SslContext context) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, uploadBytesPerSecond, context,
                    handshakeTimeout, frameDeadline, maxConnectionsPerAddress, maxConnections, peerRequestsPerSecond,
                    peerBytesPerSecond, uploadSlots);
        }

        public Settings withIdleTimeout(Duration idle) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idle, uploadBytesPerSecond, tls, handshakeTimeout,
                    frameDeadline, maxConnectionsPerAddress, maxConnections, peerRequestsPerSecond, peerBytesPerSecond, uploadSlots);
        }

        public Settings withUploadBytesPerSecond(long rate) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, rate, tls, handshakeTimeout,
                    frameDeadline, maxConnectionsPerAddress, maxConnections, peerRequestsPerSecond, peerBytesPerSecond, uploadSlots);
        }

        public Settings withDeadlines(Duration handshake, Duration frame) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, uploadBytesPerSecond, tls, handshake,
                    frame, maxConnectionsPerAddress, maxConnections, peerRequestsPerSecond, peerBytesPerSecond, uploadSlots);
        }

        public Settings withConnectionLimits(int perAddress, int total) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, uploadBytesPerSecond, tls,
                    handshakeTimeout, frameDeadline, perAddress, total, peerRequestsPerSecond, peerBytesPerSecond, uploadSlots);
        }

        public Settings withPeerRates(long requestsPerSecond, long bytesPerSecond) {
            return new Settings(clusterId, nodeId, maxFrame, maxInFlight, idleTimeout, uploadBytesPerSecond, tls,
                    handshakeTimeout, frameDeadline, maxConnectionsPerAddress, maxConnections, requestsPerSecond,
                    bytesPerSecond, uploadSlots);
        }
    }

    private final EventLoopGroup group;
    private final Channel server;
    private final GlobalTrafficShapingHandler upload;
    private final AtomicLong bytesServed = new AtomicLong();
    private final AtomicLong refusedConnections = new AtomicLong();
    private final AtomicLong refusedRequests = new AtomicLong();
    private final ConnectionLimits limits;
    private final PeerRates rates;
    /** Answers being sent now, node-wide. */
    private final UploadSlots uploadSlots;
    /** Requests answered BUSY because every upload slot was taken. */
    private final AtomicLong busyForSlots = new AtomicLong();
    private final java.util.concurrent.atomic.AtomicBoolean memoryLogged = new java.util.concurrent.atomic.AtomicBoolean();

    private PeerServer(EventLoopGroup group, GlobalTrafficShapingHandler upload, ConnectionLimits limits, PeerRates rates,
                       int uploadSlots, Channel server) {
        this.uploadSlots = new UploadSlots(uploadSlots, System::nanoTime);
        this.group = group;
        this.server = server;
        this.upload = upload;
        this.limits = limits;
        this.rates = rates;
    }

    public static PeerServer start(InetSocketAddress listen, Settings settings, ChunkProvider provider)
            throws InterruptedException {
        return start(listen, settings, provider, System::nanoTime);
    }

    /** A server whose per-peer rates run on {@code nanoTime} (tests give a fake clock). */
    static PeerServer start(InetSocketAddress listen, Settings settings, ChunkProvider provider,
                            java.util.function.LongSupplier nanoTime) throws InterruptedException {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        GlobalTrafficShapingHandler upload = settings.uploadBytesPerSecond() > 0
                ? new GlobalTrafficShapingHandler(group.next(), settings.uploadBytesPerSecond(), 0, 100) : null;
        ConnectionLimits limits = new ConnectionLimits(settings.maxConnectionsPerAddress(), settings.maxConnections());
        PeerRates rates = new PeerRates(settings.peerRequestsPerSecond(), settings.peerBytesPerSecond(), nanoTime);
        PeerServer[] self = new PeerServer[1];
        try {
            Channel ch = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel c) {
                            c.pipeline().addLast("limits", limits); // first: a connection over the limits costs no TLS handshake
                            if (settings.tls() != null) {
                                c.pipeline().addLast("tls", settings.tls().newHandler(c.alloc()));
                            }
                            if (upload != null) {
                                c.pipeline().addLast("upload-limit", upload);
                            }
                            c.pipeline().addLast("idle", new IdleStateHandler(0, 0,
                                    settings.idleTimeout().toMillis(), TimeUnit.MILLISECONDS));
                            FrameCodec.addTo(c.pipeline(), settings.maxFrame(), settings.frameDeadline(), FrameCodec.DataLimit.NONE);
                            c.pipeline().addLast("serve", new Connection(settings, provider, self[0]));
                        }
                    }).bind(listen).sync().channel();
            self[0] = new PeerServer(group, upload, limits, rates, settings.uploadSlots(), ch);
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

    /**
     * Connections closed or turned away: a bad handshake, bytes that are not the protocol, a frame
     * that took too long, an address or the node over its connection limit.
     */
    public long refusedConnections() {
        return refusedConnections.get() + limits.refused.get();
    }

    /** Requests answered BUSY because every upload slot was taken (the holders were named instead). */
    public long busyForSlots() {
        return busyForSlots.get();
    }

    /** Requests answered BUSY because their sender was over its request or byte rate. */
    public long refusedRequests() {
        return refusedRequests.get();
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

    /** Connections per address and in all: past either, a new connection is closed at once. */
    @io.netty.channel.ChannelHandler.Sharable
    private static final class ConnectionLimits extends io.netty.channel.ChannelInboundHandlerAdapter {
        private final int perAddress;
        private final int max;
        private final java.util.concurrent.ConcurrentHashMap<java.net.InetAddress, Integer> open = new java.util.concurrent.ConcurrentHashMap<>();
        private final java.util.concurrent.atomic.AtomicInteger total = new java.util.concurrent.atomic.AtomicInteger();
        private final AtomicLong refused = new AtomicLong();
        /** Addresses already named in the log for going over the limit: once each, not once a connection. */
        private final java.util.Set<java.net.InetAddress> logged = java.util.concurrent.ConcurrentHashMap.newKeySet();

        ConnectionLimits(int perAddress, int max) {
            this.perAddress = perAddress;
            this.max = max;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) throws Exception {
            java.net.InetAddress from = ((InetSocketAddress) ctx.channel().remoteAddress()).getAddress();
            int mine = open.merge(from, 1, Integer::sum);
            int all = total.incrementAndGet();
            ctx.channel().closeFuture().addListener(f -> {
                open.computeIfPresent(from, (a, n) -> n <= 1 ? null : n - 1);
                total.decrementAndGet();
            });
            if (mine > perAddress || all > max) {
                refused.incrementAndGet();
                if (logged.size() < 1024 && logged.add(from)) {
                    LOG.warning("refusing connections from " + from.getHostAddress() + ": " + (mine > perAddress
                            ? "it has " + perAddress + " open already (the limit per address)"
                            : "this node has " + max + " open (the limit)") + "; logged once per address");
                }
                ctx.close();
                return;
            }
            super.channelActive(ctx);
        }
    }

    /** One peer's connection: handshake first, then requests, each answered on the event loop. */
    private static final class Connection extends SimpleChannelInboundHandler<Frame> {
        private final Settings settings;
        private final ChunkProvider provider;
        private final PeerServer server;
        private boolean greeted;
        private String peer = "a peer";
        private PeerIdentity identity;
        private int inFlight;

        Connection(Settings settings, ChunkProvider provider, PeerServer server) {
            this.settings = settings;
            this.provider = provider;
            this.server = server;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) throws Exception {
            peer = String.valueOf(ctx.channel().remoteAddress());
            ctx.executor().schedule(() -> {
                if (!greeted && ctx.channel().isActive()) {
                    server.refusedConnections.incrementAndGet();
                    LOG.fine("closing the connection of " + peer + ": no handshake within " + settings.handshakeTimeout());
                    ctx.close();
                }
            }, settings.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
            super.channelActive(ctx);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Frame frame) {
            if (!greeted) {
                if (frame instanceof Frame.Hello hello && hello.version() == Frame.VERSION
                        && hello.clusterId().equals(settings.clusterId())) {
                    greeted = true;
                    identity = new PeerIdentity(hello.nodeId(), ((InetSocketAddress) ctx.channel().remoteAddress()).getAddress(),
                            certificateOf(ctx));
                    peer = identity.toString();
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

        /** The subject of the certificate the peer proved at the TLS handshake, or null on plain TCP. */
        private static String certificateOf(ChannelHandlerContext ctx) {
            io.netty.handler.ssl.SslHandler tls = ctx.pipeline().get(io.netty.handler.ssl.SslHandler.class);
            if (tls == null) {
                return null;
            }
            try {
                java.security.cert.Certificate[] chain = tls.engine().getSession().getPeerCertificates();
                return chain.length > 0 && chain[0] instanceof java.security.cert.X509Certificate x
                        ? x.getSubjectX500Principal().getName() : null;
            } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
                return null;
            }
        }

        private void serve(ChannelHandlerContext ctx, Frame.Request request) {
            if (inFlight >= settings.maxInFlight()) {
                ctx.writeAndFlush(new Frame.Busy(request.stream(), 50));
                return;
            }
            long wait = server.rates.admit(identity.address());
            if (wait > 0) {
                server.refusedRequests.incrementAndGet();
                ctx.writeAndFlush(new Frame.Busy(request.stream(), (int) Math.min(wait, 10_000)));
                return;
            }
            UploadSlots slots = server.uploadSlots;
            long slot = slots.tryAcquire();
            if (slot < 0) {
                // every slot is sending: the span's holders serve it instead, and the swarm grows
                server.busyForSlots.incrementAndGet();
                List<String> holders = provider.holders(identity, request);
                ctx.writeAndFlush(new Frame.Busy(request.stream(), slots.retryAfterMillis(),
                        holders.subList(0, Math.min(holders.size(), Frame.Busy.MAX_HOLDERS))));
                return;
            }
            inFlight++;
            CompletableFuture<List<byte[]>> answer = provider.serve(identity, request);
            long workingUntil = System.nanoTime() + WORKING_FOR.toNanos();
            io.netty.util.concurrent.ScheduledFuture<?> working = ctx.executor().scheduleAtFixedRate(() -> {
                if (!answer.isDone() && System.nanoTime() - workingUntil < 0) {
                    ctx.writeAndFlush(new Frame.Working(request.stream()));
                }
            }, WORKING_EVERY.toNanos(), WORKING_EVERY.toNanos(), TimeUnit.NANOSECONDS);
            answer.whenComplete((chunks, failure) -> ctx.executor().execute(() -> {
                working.cancel(false);
                inFlight--;
                if (failure != null) {
                    Throwable cause = failure instanceof java.util.concurrent.CompletionException c && c.getCause() != null
                            ? c.getCause() : failure;
                    Frame.ErrorCode code = cause instanceof PeerException.Refused r ? r.code() : Frame.ErrorCode.FAILED;
                    ctx.writeAndFlush(new Frame.Error(request.stream(), code, String.valueOf(cause.getMessage())));
                    slots.release(slot);
                    return;
                }
                List<byte[]> answers = chunks;
                long sent = 0;
                boolean complete = true;
                io.netty.channel.ChannelFuture last = null;
                for (int i = 0; i < request.chunks().size(); i++) {
                    byte[] data = i < answers.size() ? answers.get(i) : null;
                    if (data == null) {
                        complete = false;
                        last = ctx.write(new Frame.Miss(request.stream(), i));
                    } else {
                        sent += data.length;
                        last = ctx.write(new Frame.Data(request.stream(), i, data));
                    }
                }
                server.bytesServed.addAndGet(sent);
                server.rates.served(identity.address(), sent);
                ctx.flush();
                boolean held = complete && last != null;
                if (last == null) {
                    slots.release(slot);
                } else { // the slot is the uplink's: held until the last byte of the answer left
                    last.addListener(f -> {
                        slots.release(slot);
                        if (held && f.isSuccess()) {
                            provider.sent(identity, request);
                        }
                    });
                }
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
            if (outOfMemory(cause)) {
                server.refusedConnections.incrementAndGet();
                if (server.memoryLogged.compareAndSet(false, true)) {
                    LOG.warning("closing the connection of " + peer + ": no memory for its frame (" + cause
                            + "); logged once, counted in refused connections");
                }
            } else if (cause instanceof DecoderException) {
                server.refusedConnections.incrementAndGet();
                LOG.warning("closing the connection of " + peer + ": " + (cause instanceof FrameCodec.FrameDeadlineException
                        ? cause.getMessage() : "it sent what is not the protocol (" + cause.getMessage() + ")"));
            }
            ctx.close();
        }

        private static boolean outOfMemory(Throwable t) {
            for (Throwable c = t; c != null; c = c.getCause()) {
                if (c instanceof OutOfMemoryError) { // Netty's OutOfDirectMemoryError among them
                    return true;
                }
            }
            return false;
        }
    }
}
