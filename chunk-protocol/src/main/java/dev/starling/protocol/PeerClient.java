package dev.starling.protocol;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One connection to one peer, many requests multiplexed on it: each request gets a stream number,
 * and its future completes when every chunk has an answer (bytes, or null for a miss), or fails
 * with a {@link PeerException} saying why (busy, refused, connection gone). A request fails, and is
 * cancelled at the peer, when the connection has been silent for its timeout: a dead peer costs one
 * timeout, a slow one that keeps sending is waited for (up to {@link #PROGRESS_CAP}).
 */
public final class PeerClient implements AutoCloseable {
    private final EventLoopGroup group;
    private final Channel channel;
    private final String peer;
    private final Map<Integer, Pending> pending = new ConcurrentHashMap<>();
    private final AtomicInteger nextStream = new AtomicInteger(1);
    private volatile String closedBecause;
    /** The largest chunk asked for on this connection: the most a late answer to a cancelled stream may carry. */
    private volatile int largestAsked;
    /** When bytes last arrived on this connection: a peer sending (this answer, or those queued before it) is not dead. */
    private volatile long lastBytesNanos = System.nanoTime();
    /**
     * The longest a request may take while bytes keep arriving: far above what a healthy but saturated
     * link needs for a chunk (a 4 MiB chunk shared by a dozen readers on an 8 Mbit/s uplink: about a
     * minute), so a slow peer makes a read slower, never fail, and a peer that trickles forever is cut.
     */
    public static final Duration PROGRESS_CAP = Duration.ofMinutes(2);

    private static final class Pending {
        final byte[][] chunks;
        final int[] sizes;
        final boolean[] answered;
        int left;
        final CompletableFuture<List<byte[]>> future = new CompletableFuture<>();

        Pending(List<Frame.ChunkRef> refs) {
            chunks = new byte[refs.size()][];
            sizes = refs.stream().mapToInt(Frame.ChunkRef::size).toArray();
            answered = new boolean[refs.size()];
            left = refs.size();
        }
    }

    /** What a DATA frame may carry: the size of the chunk it answers, nothing a peer chooses. */
    private long expectedBytes(int stream, int index) {
        Pending p = pending.get(stream);
        if (p != null) {
            return index < p.sizes.length ? p.sizes[index] : -1;
        }
        return largestAsked;
    }

    private PeerClient(EventLoopGroup group, Channel channel, String peer) {
        this.group = group;
        this.channel = channel;
        this.peer = peer;
    }

    /** Connects and shakes hands; fails with {@link PeerException.Refused} when the peer refuses the handshake. */
    public static PeerClient connect(InetSocketAddress address, String clusterId, String nodeId, Duration timeout,
                                     SslContext tls, int maxFrame) throws PeerException {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        CompletableFuture<String> greeted = new CompletableFuture<>();
        PeerClient[] self = new PeerClient[1];
        String peer = address.toString();
        try {
            Channel ch = new Bootstrap().group(group).channel(NioSocketChannel.class)
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) timeout.toMillis())
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel c) {
                            if (tls != null) {
                                c.pipeline().addLast("tls", tls.newHandler(c.alloc(), address.getHostString(), address.getPort()));
                            }
                            c.pipeline().addLast("progress", new io.netty.channel.ChannelInboundHandlerAdapter() {
                                @Override
                                public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                    if (self[0] != null) {
                                        self[0].lastBytesNanos = System.nanoTime();
                                    }
                                    ctx.fireChannelRead(msg);
                                }
                            });
                            // a DATA frame longer than its chunk is refused from its header: a peer never
                            // makes this node buffer more than it asked for
                            FrameCodec.addTo(c.pipeline(), maxFrame, null,
                                    (stream, index) -> self[0] == null ? -1 : self[0].expectedBytes(stream, index));
                            c.pipeline().addLast("answers", new Answers(greeted, self));
                        }
                    }).connect(address).sync().channel();
            self[0] = new PeerClient(group, ch, peer);
            ch.writeAndFlush(new Frame.Hello(Frame.VERSION, clusterId, nodeId));
            greeted.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return self[0];
        } catch (ExecutionException e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw e.getCause() instanceof PeerException p ? p : new PeerException(peer + ": " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw new PeerException(peer + " did not answer the handshake within " + timeout.toMillis() + " ms");
        } catch (InterruptedException e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            Thread.currentThread().interrupt();
            throw new PeerException("interrupted connecting to " + peer);
        } catch (Exception e) { // Netty's sync() rethrows a refused connection as the checked exception it is
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw new PeerException.Closed("cannot connect to " + peer + ": " + e.getMessage());
        }
    }

    /** Asks for chunks; the future holds one entry per chunk (null: the peer has not got it). */
    public CompletableFuture<List<byte[]>> request(Frame.Locator locator, List<Frame.ChunkRef> chunks, Duration timeout) {
        if (closedBecause != null) {
            return CompletableFuture.failedFuture(new PeerException.Closed(peer + ": " + closedBecause));
        }
        int stream = nextStream.getAndIncrement();
        Pending p = new Pending(chunks);
        int largest = java.util.Arrays.stream(p.sizes).max().orElse(0);
        if (largest > largestAsked) {
            largestAsked = largest;
        }
        pending.put(stream, p);
        channel.writeAndFlush(new Frame.Request(stream, locator, chunks)).addListener(f -> {
            if (!f.isSuccess()) {
                fail(stream, new PeerException.Closed(peer + ": sending failed: " + f.cause()));
            }
        });
        watch(stream, System.nanoTime(), timeout.toNanos(), timeout.toNanos());
        return p.future;
    }

    /**
     * Fails {@code stream} when the connection has been silent for {@code timeout} since it was sent,
     * or when {@link #PROGRESS_CAP} has passed; while bytes keep arriving it waits on.
     */
    private void watch(int stream, long sentAt, long timeout, long delay) {
        channel.eventLoop().schedule(() -> {
            if (!pending.containsKey(stream)) {
                return;
            }
            long now = System.nanoTime();
            long quietFor = now - Math.max(sentAt, lastBytesNanos);
            if (quietFor >= timeout || now - sentAt >= PROGRESS_CAP.toNanos()) {
                fail(stream, new PeerException(peer + (quietFor >= timeout ? " did not answer within " + timeout / 1_000_000 + " ms"
                        : " sent bytes but did not finish within " + PROGRESS_CAP.toSeconds() + " s")));
                channel.writeAndFlush(new Frame.Cancel(stream));
            } else {
                watch(stream, sentAt, timeout, Math.max(1_000_000, timeout - quietFor));
            }
        }, delay, TimeUnit.NANOSECONDS);
    }

    public boolean isOpen() {
        return channel.isActive() && closedBecause == null;
    }

    private void fail(int stream, PeerException e) {
        Pending p = pending.remove(stream);
        if (p != null) {
            p.future.completeExceptionally(e);
        }
    }

    private void failAll(String why) {
        failAll(why, false);
    }

    /** Fails every request in flight; {@code violation}: because the peer broke the protocol, not because it went away. */
    private void failAll(String why, boolean violation) {
        closedBecause = why;
        for (Integer stream : List.copyOf(pending.keySet())) {
            fail(stream, violation ? new PeerException.Violation(peer + ": " + why) : new PeerException.Closed(peer + ": " + why));
        }
    }

    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return; // its event loop is gone: closing again would be refused by it
        }
        failAll("closed");
        channel.close().syncUninterruptibly();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }

    /** Answers from the peer, matched to their requests by stream. */
    private static final class Answers extends SimpleChannelInboundHandler<Frame> {
        private final CompletableFuture<String> greeted;
        private final PeerClient[] self;

        Answers(CompletableFuture<String> greeted, PeerClient[] self) {
            this.greeted = greeted;
            this.self = self;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Frame frame) {
            PeerClient c = self[0];
            switch (frame) {
                case Frame.HelloOk ok -> greeted.complete(ok.nodeId());
                case Frame.Data d -> answer(c, d.stream(), d.index(), d.bytes());
                case Frame.Miss m -> answer(c, m.stream(), m.index(), null);
                case Frame.Busy b -> c.fail(b.stream(), new PeerException.Busy(c.peer, b.retryAfterMillis(), b.holders()));
                case Frame.Working w -> {
                    // the peer is filling the request: its bytes reset the silence timer, nothing else to do
                }
                case Frame.Error e -> {
                    PeerException.Refused refused = new PeerException.Refused(c == null ? "peer" : c.peer, e.code(), e.message());
                    if (!greeted.isDone()) {
                        greeted.completeExceptionally(refused);
                    } else {
                        c.fail(e.stream(), refused);
                    }
                }
                default -> { // a peer that asks us things on our own connection is not speaking the protocol
                    if (c != null) {
                        c.failAll("it sent a " + frame.getClass().getSimpleName() + " frame to a requester", true);
                    }
                    ctx.close();
                }
            }
        }

        private static void answer(PeerClient c, int stream, int index, byte[] data) {
            Pending p = c.pending.get(stream);
            if (p == null || index >= p.chunks.length || p.answered[index]) {
                return; // cancelled, timed out, or a stray answer
            }
            p.answered[index] = true;
            p.chunks[index] = data;
            if (--p.left == 0) {
                c.pending.remove(stream);
                p.future.complete(Arrays.asList(p.chunks));
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            greeted.completeExceptionally(new PeerException.Closed("the peer closed the connection during the handshake"));
            if (self[0] != null) {
                self[0].failAll("connection lost");
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (self[0] != null) {
                boolean violation = cause instanceof io.netty.handler.codec.DecoderException;
                self[0].failAll(violation ? "it broke the protocol: " + cause.getMessage()
                        : "connection failed: " + cause.getMessage(), violation);
            }
            ctx.close();
        }
    }
}
