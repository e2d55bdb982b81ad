package dev.starling.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.MessageToMessageDecoder;
import io.netty.handler.codec.MessageToMessageEncoder;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The bytes of {@link Frame}s (docs/protocol.md), apart from any transport: a length-prefixed frame
 * ({@link LengthFieldBasedFrameDecoder}, so a frame is never buffered past the limit), then a typed
 * frame. Anything malformed is a {@link CorruptedFrameException} naming what is wrong; a frame over
 * the limit a {@code TooLongFrameException}. Data frames are sent without copying the chunk.
 */
public final class FrameCodec {
    static final int HELLO = 0x01, HELLO_OK = 0x02, REQUEST = 0x10, DATA = 0x11, MISS = 0x12, BUSY = 0x13,
            ERROR = 0x14, CANCEL = 0x15, WORKING = 0x16;
    /** Longest string field, in bytes: ids, registry hosts, repositories, digests, messages. */
    static final int MAX_STRING = 1024;
    /** Most chunks one request may ask for. */
    public static final int MAX_CHUNKS = 1024;
    /** Largest chunk, as the reader allows (ReaderLimits' maxChunkSize). */
    public static final int MAX_CHUNK_SIZE = 64 << 20;
    /** Default frame limit: the largest chunk and its header. */
    public static final int DEFAULT_MAX_FRAME = MAX_CHUNK_SIZE + 64;
    /**
     * What a server accepts: the largest request (five strings of {@link #MAX_STRING} bytes and
     * {@link #MAX_CHUNKS} chunks of 56 bytes, about 62 KiB) with room to spare. A requester sends
     * nothing bigger, so a server never buffers more than this for anyone.
     */
    public static final int MAX_REQUEST_FRAME = 128 << 10;
    /** Bytes of a DATA frame before the chunk: type, stream, index. */
    static final int DATA_HEADER = 1 + 4 + 2;
    private static final int FLAG_ZSTD = 1, FLAG_HELD_ONLY = 2;

    /** The most bytes a DATA frame may carry for a chunk the requester asked for; the client knows its requests. */
    @FunctionalInterface
    public interface DataLimit {
        long maxBytes(int stream, int index);

        DataLimit NONE = (stream, index) -> MAX_CHUNK_SIZE;
    }

    private FrameCodec() {
    }

    /** Adds the codec to a pipeline: length framing, then frames in and out. */
    public static void addTo(ChannelPipeline pipeline, int maxFrame) {
        addTo(pipeline, maxFrame, null, DataLimit.NONE);
    }

    /**
     * Adds the codec with the guards of a connection to an untrusted party: a frame that has begun
     * must be complete within {@code frameDeadline} (null for no deadline), and a DATA frame longer
     * than {@code dataLimit} allows for its chunk is refused from its header, before it is buffered.
     */
    public static void addTo(ChannelPipeline pipeline, int maxFrame, java.time.Duration frameDeadline, DataLimit dataLimit) {
        pipeline.addLast("frame-length", new Framer(maxFrame, frameDeadline, dataLimit));
        pipeline.addLast("frame-decoder", new Decoder());
        pipeline.addLast("frame-encoder", ENCODER);
    }

    /** A frame that began and did not end within the deadline: a slow sender holding a buffer open. */
    public static final class FrameDeadlineException extends io.netty.handler.codec.DecoderException {
        FrameDeadlineException(String message) {
            super(message);
        }
    }

    /**
     * Length framing ({@link LengthFieldBasedFrameDecoder}, failing fast past the limit) with two
     * guards: a DATA frame is measured against what was asked from its first 11 bytes, and a
     * partial frame has a deadline.
     */
    static final class Framer extends LengthFieldBasedFrameDecoder {
        private final long deadlineNanos;
        private final DataLimit dataLimit;
        private io.netty.util.concurrent.ScheduledFuture<?> deadline;
        private long framesDecoded;
        private long framesAtArm = -1;

        Framer(int maxFrame, java.time.Duration frameDeadline, DataLimit dataLimit) {
            super(maxFrame, 0, 4, 0, 4, true);
            this.deadlineNanos = frameDeadline == null ? 0 : frameDeadline.toNanos();
            this.dataLimit = dataLimit;
        }

        @Override
        protected Object decode(ChannelHandlerContext ctx, ByteBuf in) throws Exception {
            if (in.readableBytes() >= 4 + DATA_HEADER) {
                int r = in.readerIndex();
                if (in.getUnsignedByte(r + 4) == DATA) {
                    long chunk = in.getUnsignedInt(r) - DATA_HEADER;
                    long allowed = dataLimit.maxBytes(in.getInt(r + 5), in.getUnsignedShort(r + 9));
                    if (chunk > allowed) {
                        in.skipBytes(in.readableBytes());
                        throw new CorruptedFrameException("a DATA frame of " + chunk + " bytes for a chunk of at most "
                                + allowed + " bytes");
                    }
                }
            }
            Object frame = super.decode(ctx, in);
            if (frame != null) {
                framesDecoded++;
            }
            return frame;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
            super.channelRead(ctx, msg);
            if (deadlineNanos == 0 || !ctx.channel().isActive()) {
                return;
            }
            boolean partial = actualReadableBytes() > 0;
            if (!partial) {
                disarm();
            } else if (deadline == null || framesDecoded != framesAtArm) { // a new frame began
                disarm();
                framesAtArm = framesDecoded;
                deadline = ctx.executor().schedule(() -> {
                    if (framesDecoded == framesAtArm && actualReadableBytes() > 0) {
                        ctx.fireExceptionCaught(new FrameDeadlineException("a frame did not complete within "
                                + deadlineNanos / 1_000_000 + " ms"));
                    }
                }, deadlineNanos, java.util.concurrent.TimeUnit.NANOSECONDS);
            }
        }

        private void disarm() {
            if (deadline != null) {
                deadline.cancel(false);
                deadline = null;
            }
        }

        @Override
        protected void handlerRemoved0(ChannelHandlerContext ctx) {
            disarm();
        }
    }

    private static final Encoder ENCODER = new Encoder();

    /** Bytes of one length-framed frame (without the length) to a {@link Frame}. */
    static final class Decoder extends MessageToMessageDecoder<ByteBuf> {
        @Override
        protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
            out.add(decode(in));
        }

        static Frame decode(ByteBuf in) {
            int type = u8(in, "frame type");
            Frame f = switch (type) {
                case HELLO -> new Frame.Hello(u16(in, "version"), string(in, "cluster id"), string(in, "node id"));
                case HELLO_OK -> new Frame.HelloOk(u16(in, "version"), string(in, "node id"));
                case REQUEST -> request(in);
                case DATA -> {
                    int stream = u32(in, "stream");
                    int index = u16(in, "chunk index");
                    byte[] bytes = new byte[in.readableBytes()];
                    in.readBytes(bytes);
                    yield new Frame.Data(stream, index, bytes);
                }
                case MISS -> new Frame.Miss(u32(in, "stream"), u16(in, "chunk index"));
                case BUSY -> {
                    int stream = u32(in, "stream");
                    int retryAfter = u32(in, "retry-after");
                    int count = u16(in, "holder count");
                    if (count > Frame.Busy.MAX_HOLDERS) {
                        throw new CorruptedFrameException(count + " holders, at most " + Frame.Busy.MAX_HOLDERS);
                    }
                    List<String> holders = new java.util.ArrayList<>(count);
                    for (int i = 0; i < count; i++) {
                        holders.add(string(in, "holder"));
                    }
                    yield new Frame.Busy(stream, retryAfter, holders);
                }
                case ERROR -> {
                    int stream = u32(in, "stream");
                    int wire = u16(in, "error code");
                    Frame.ErrorCode code = Frame.ErrorCode.of(wire);
                    if (code == null) {
                        throw new CorruptedFrameException("unknown error code " + wire);
                    }
                    yield new Frame.Error(stream, code, string(in, "error message"));
                }
                case CANCEL -> new Frame.Cancel(u32(in, "stream"));
                case WORKING -> new Frame.Working(u32(in, "stream"));
                default -> throw new CorruptedFrameException("unknown frame type 0x" + Integer.toHexString(type));
            };
            if (in.isReadable()) {
                throw new CorruptedFrameException(in.readableBytes() + " bytes after a frame of type 0x"
                        + Integer.toHexString(type));
            }
            return f;
        }

        private static Frame.Request request(ByteBuf in) {
            int stream = u32(in, "stream");
            String registry = string(in, "registry");
            String repository = string(in, "repository");
            String blob = string(in, "blob digest");
            String toc = string(in, "TOC digest");
            int flags = u8(in, "flags");
            if ((flags & ~(FLAG_ZSTD | FLAG_HELD_ONLY)) != 0) {
                throw new CorruptedFrameException("unknown flags 0x" + Integer.toHexString(flags));
            }
            long offset = u64(in, "compressed offset");
            int length = u32(in, "compressed length");
            int count = u16(in, "chunk count");
            if (count == 0 || count > MAX_CHUNKS) {
                throw new CorruptedFrameException("a request for " + count + " chunks (1.." + MAX_CHUNKS + ")");
            }
            List<Frame.ChunkRef> chunks = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                long coff = u64(in, "chunk offset");
                long cend = u64(in, "chunk end");
                int inner = u32(in, "inner offset");
                int size = u32(in, "chunk size");
                if (cend <= coff || size <= 0 || size > MAX_CHUNK_SIZE) {
                    throw new CorruptedFrameException("chunk " + i + ": span [" + coff + ", " + cend + "), size " + size);
                }
                if (in.readableBytes() < 32) {
                    throw new CorruptedFrameException("chunk " + i + ": sha256 cut short");
                }
                byte[] sha = new byte[32];
                in.readBytes(sha);
                chunks.add(new Frame.ChunkRef(coff, cend, inner, size, sha));
            }
            return new Frame.Request(stream, new Frame.Locator(registry, repository, blob, toc, (flags & FLAG_ZSTD) != 0,
                    (flags & FLAG_HELD_ONLY) != 0, offset, length), chunks);
        }

        private static int u8(ByteBuf in, String what) {
            need(in, 1, what);
            return in.readUnsignedByte();
        }

        private static int u16(ByteBuf in, String what) {
            need(in, 2, what);
            return in.readUnsignedShort();
        }

        /** An unsigned 32-bit field that must also fit a Java int (streams, lengths, sizes). */
        private static int u32(ByteBuf in, String what) {
            need(in, 4, what);
            long v = in.readUnsignedInt();
            if (v > Integer.MAX_VALUE) {
                throw new CorruptedFrameException(what + " " + v + " is out of range");
            }
            return (int) v;
        }

        private static long u64(ByteBuf in, String what) {
            need(in, 8, what);
            long v = in.readLong();
            if (v < 0) {
                throw new CorruptedFrameException(what + " " + Long.toUnsignedString(v) + " is out of range");
            }
            return v;
        }

        private static String string(ByteBuf in, String what) {
            int n = u16(in, what + " length");
            if (n > MAX_STRING) {
                throw new CorruptedFrameException(what + " of " + n + " bytes (at most " + MAX_STRING + ")");
            }
            need(in, n, what);
            ByteBuffer bytes = in.nioBuffer(in.readerIndex(), n);
            in.skipBytes(n);
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes).toString();
            } catch (CharacterCodingException e) {
                throw new CorruptedFrameException(what + " is not UTF-8");
            }
        }

        private static void need(ByteBuf in, int n, String what) {
            if (in.readableBytes() < n) {
                throw new CorruptedFrameException("frame ends inside its " + what);
            }
        }
    }

    /** {@link Frame}s to bytes; a data frame's chunk is wrapped, not copied. */
    @ChannelHandler.Sharable
    static final class Encoder extends MessageToMessageEncoder<Frame> {
        @Override
        protected void encode(ChannelHandlerContext ctx, Frame frame, List<Object> out) {
            out.add(encode(ctx.alloc(), frame));
        }

        static ByteBuf encode(ByteBufAllocator alloc, Frame frame) {
            ByteBuf h = alloc.buffer(64);
            h.writeInt(0); // length, filled in below
            switch (frame) {
                case Frame.Hello f -> {
                    h.writeByte(HELLO).writeShort(f.version());
                    string(h, f.clusterId());
                    string(h, f.nodeId());
                }
                case Frame.HelloOk f -> {
                    h.writeByte(HELLO_OK).writeShort(f.version());
                    string(h, f.nodeId());
                }
                case Frame.Request f -> {
                    h.writeByte(REQUEST).writeInt(f.stream());
                    string(h, f.locator().registry());
                    string(h, f.locator().repository());
                    string(h, f.locator().blobDigest());
                    string(h, f.locator().tocDigest());
                    h.writeByte((f.locator().zstd() ? FLAG_ZSTD : 0) | (f.locator().heldOnly() ? FLAG_HELD_ONLY : 0));
                    h.writeLong(f.locator().compressedOffset()).writeInt(f.locator().compressedLength());
                    h.writeShort(f.chunks().size());
                    for (Frame.ChunkRef c : f.chunks()) {
                        h.writeLong(c.compressedOffset()).writeLong(c.compressedEnd()).writeInt(c.innerOffset())
                                .writeInt(c.size()).writeBytes(c.sha256());
                    }
                }
                case Frame.Data f -> {
                    h.writeByte(DATA).writeInt(f.stream()).writeShort(f.index());
                    h.setInt(0, h.readableBytes() - 4 + f.bytes().length);
                    return Unpooled.wrappedBuffer(h, Unpooled.wrappedBuffer(f.bytes()));
                }
                case Frame.Miss f -> h.writeByte(MISS).writeInt(f.stream()).writeShort(f.index());
                case Frame.Busy f -> {
                    h.writeByte(BUSY).writeInt(f.stream()).writeInt(f.retryAfterMillis()).writeShort(f.holders().size());
                    f.holders().forEach(holder -> string(h, holder));
                }
                case Frame.Error f -> {
                    h.writeByte(ERROR).writeInt(f.stream()).writeShort(f.code().wire);
                    string(h, f.message().length() > 300 ? f.message().substring(0, 300) : f.message());
                }
                case Frame.Cancel f -> h.writeByte(CANCEL).writeInt(f.stream());
                case Frame.Working f -> h.writeByte(WORKING).writeInt(f.stream());
            }
            h.setInt(0, h.readableBytes() - 4);
            return h;
        }

        private static void string(ByteBuf out, String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            if (b.length > MAX_STRING) {
                throw new IllegalArgumentException("a string field of " + b.length + " bytes (at most " + MAX_STRING + ")");
            }
            out.writeShort(b.length).writeBytes(b);
        }
    }
}
