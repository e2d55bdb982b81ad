package dev.starling.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The codec through Netty's EmbeddedChannel: every frame round-trips, and no bytes break it. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FrameCodecTest {
    static final int MAX = 1 << 20;

    static EmbeddedChannel channel() {
        EmbeddedChannel ch = new EmbeddedChannel();
        FrameCodec.addTo(ch.pipeline(), MAX);
        return ch;
    }

    static List<Frame> samples() {
        byte[] sha = new byte[32];
        new Random(1).nextBytes(sha);
        Frame.Locator where = new Frame.Locator("registry.example.com:5000", "team/app", "sha256:" + "ab".repeat(32), "sha256:" + "cd".repeat(32), false, true, 1234, 5678);
        return List.of(
                new Frame.Hello(Frame.VERSION, "cluster-é", "node-1"),
                new Frame.HelloOk(Frame.VERSION, "node-2"),
                new Frame.Request(7, where, List.of(new Frame.ChunkRef(1234, 3000, 0, 4096, sha),
                        new Frame.ChunkRef(3000, 6912, 17, 100, sha))),
                new Frame.Data(7, 1, "chunk bytes".getBytes()),
                new Frame.Data(8, 0, new byte[0]),
                new Frame.Miss(7, 0),
                new Frame.Busy(9, 250),
                new Frame.Busy(13, 500, List.of("10.0.0.7:7400", "node-b:7400")),
                new Frame.Error(10, Frame.ErrorCode.REGISTRY_NOT_ALLOWED, "evil.example is not allowed"),
                new Frame.Cancel(11),
                new Frame.Working(12));
    }

    static byte[] bytes(Frame f) {
        ByteBuf b = FrameCodec.Encoder.encode(ByteBufAllocator.DEFAULT, f);
        byte[] out = new byte[b.readableBytes()];
        b.readBytes(out);
        b.release();
        return out;
    }

    @Test
    void everyFrameRoundTripsEvenOneByteAtATime() {
        for (boolean trickle : new boolean[] {false, true}) {
            EmbeddedChannel out = channel();
            EmbeddedChannel in = channel();
            for (Frame f : samples()) {
                assertTrue(out.writeOutbound(f));
                ByteBuf wire = out.readOutbound();
                if (trickle) {
                    while (wire.isReadable()) {
                        in.writeInbound(wire.readRetainedSlice(1));
                    }
                    wire.release();
                } else {
                    in.writeInbound(wire);
                }
                Frame back = in.readInbound();
                assertEquivalent(f, back);
            }
            assertNull(in.readInbound());
        }
    }

    static void assertEquivalent(Frame sent, Frame got) {
        if (sent instanceof Frame.Data d) {
            Frame.Data g = assertInstanceOf(Frame.Data.class, got);
            assertEquals(d.stream(), g.stream());
            assertEquals(d.index(), g.index());
            assertArrayEquals(d.bytes(), g.bytes());
        } else if (sent instanceof Frame.Request r) {
            Frame.Request g = assertInstanceOf(Frame.Request.class, got);
            assertEquals(r.stream(), g.stream());
            assertEquals(r.locator(), g.locator());
            assertEquals(r.chunks().size(), g.chunks().size());
            for (int i = 0; i < r.chunks().size(); i++) {
                assertEquals(r.chunks().get(i).compressedOffset(), g.chunks().get(i).compressedOffset());
                assertEquals(r.chunks().get(i).size(), g.chunks().get(i).size());
                assertArrayEquals(r.chunks().get(i).sha256(), g.chunks().get(i).sha256());
            }
        } else {
            assertEquals(sent, got);
        }
    }

    @Test
    void aDataFrameSendsTheChunkWithoutCopyingIt() {
        byte[] chunk = new byte[1 << 16];
        ByteBuf wire = FrameCodec.Encoder.encode(ByteBufAllocator.DEFAULT, new Frame.Data(1, 0, chunk));
        chunk[100] = 42; // the frame still points at the chunk's own array
        assertEquals(42, wire.getByte(4 + 1 + 4 + 2 + 100));
        wire.release();
    }

    @Test
    void aFrameOverTheLimitIsRefusedBeforeItIsBuffered() {
        EmbeddedChannel in = channel();
        ByteBuf header = Unpooled.buffer().writeInt(MAX + 1).writeByte(FrameCodec.DATA);
        assertThrows(TooLongFrameException.class, () -> in.writeInbound(header));
    }

    @Test
    void aDataFrameLongerThanTheChunkItAnswersIsRefusedFromItsHeader() {
        FrameCodec.DataLimit asked = (stream, index) -> stream == 5 && index == 0 ? 100 : -1;
        EmbeddedChannel in = new EmbeddedChannel();
        FrameCodec.addTo(in.pipeline(), FrameCodec.DEFAULT_MAX_FRAME, null, asked);
        ByteBuf header = Unpooled.buffer().writeInt(FrameCodec.DATA_HEADER + (64 << 20)).writeByte(FrameCodec.DATA)
                .writeInt(5).writeShort(0);
        CorruptedFrameException e = assertThrows(CorruptedFrameException.class, () -> in.writeInbound(header));
        assertTrue(e.getMessage().contains("a DATA frame of 67108864 bytes for a chunk of at most 100 bytes"), e.getMessage());

        EmbeddedChannel exact = new EmbeddedChannel();
        FrameCodec.addTo(exact.pipeline(), FrameCodec.DEFAULT_MAX_FRAME, null, asked);
        exact.writeInbound(Unpooled.wrappedBuffer(bytes(new Frame.Data(5, 0, new byte[100]))));
        assertEquals(100, assertInstanceOf(Frame.Data.class, exact.readInbound()).bytes().length);
        EmbeddedChannel stray = new EmbeddedChannel();
        FrameCodec.addTo(stray.pipeline(), FrameCodec.DEFAULT_MAX_FRAME, null, asked);
        assertThrows(CorruptedFrameException.class, () -> stray.writeInbound(Unpooled.wrappedBuffer(bytes(new Frame.Data(5, 1, new byte[1])))),
                "an answer to a chunk never asked for");
    }

    @Test
    void aFrameThatBeginsAndDoesNotEndInTimeIsRefused() {
        EmbeddedChannel in = new EmbeddedChannel();
        in.freezeTime();
        FrameCodec.addTo(in.pipeline(), MAX, java.time.Duration.ofSeconds(10), FrameCodec.DataLimit.NONE);
        byte[] cancel = bytes(new Frame.Cancel(3));
        for (int i = 0; i < 3; i++) { // whole frames keep no deadline running, however long apart
            in.writeInbound(Unpooled.wrappedBuffer(cancel));
            in.advanceTimeBy(60, TimeUnit.SECONDS);
            in.runScheduledPendingTasks();
            in.checkException();
            assertInstanceOf(Frame.Cancel.class, in.readInbound());
        }
        in.writeInbound(Unpooled.wrappedBuffer(cancel, 0, 3)); // then one byte a second...
        in.advanceTimeBy(9, TimeUnit.SECONDS);
        in.runScheduledPendingTasks();
        in.checkException();
        in.writeInbound(Unpooled.wrappedBuffer(cancel, 3, 1));
        in.advanceTimeBy(2, TimeUnit.SECONDS); // ...does not reset the frame's deadline
        in.runScheduledPendingTasks();
        FrameCodec.FrameDeadlineException e = assertThrows(FrameCodec.FrameDeadlineException.class, in::checkException);
        assertTrue(e.getMessage().contains("did not complete within 10000 ms"), e.getMessage());
    }

    @Test
    void malformedFramesNameWhatIsWrong() {
        record Case(byte[] body, String said) {
        }
        List<Case> cases = List.of(
                new Case(new byte[] {0x7f}, "unknown frame type 0x7f"),
                new Case(new byte[] {FrameCodec.MISS, 0, 0, 0, 1}, "frame ends inside its chunk index"),
                new Case(new byte[] {FrameCodec.MISS, 0, 0, 0, 1, 0, 0, 9}, "1 bytes after a frame"),
                new Case(new byte[] {FrameCodec.CANCEL, (byte) 0x80, 0, 0, 0}, "stream 2147483648 is out of range"),
                new Case(new byte[] {FrameCodec.HELLO_OK, 0, 1, 0, 2, (byte) 0xff, (byte) 0xfe}, "node id is not UTF-8"),
                new Case(new byte[] {FrameCodec.ERROR, 0, 0, 0, 1, 0, 99, 0, 0}, "unknown error code 99"));
        for (Case c : cases) {
            EmbeddedChannel in = channel();
            ByteBuf frame = Unpooled.buffer().writeInt(c.body().length).writeBytes(c.body());
            CorruptedFrameException e = assertThrows(CorruptedFrameException.class, () -> in.writeInbound(frame));
            assertTrue(e.getMessage().contains(c.said()), c.said() + " in " + e.getMessage());
        }
    }

    /**
     * Any bytes at all: random frames, valid frames with bytes flipped, cut, or with random lengths,
     * fed in random pieces. The decoder may refuse them, but only with a decoder exception, never
     * hangs, and never holds more than one frame's limit.
     */
    @Test
    void noBytesEscapeTheDecoderAsAnythingButADecoderException() {
        Random random = new Random(20261201);
        List<byte[]> valid = new ArrayList<>();
        for (Frame f : samples()) {
            valid.add(bytes(f));
        }
        int refused = 0;
        for (int round = 0; round < 20_000; round++) {
            byte[] input;
            int kind = random.nextInt(4);
            if (kind == 0) {
                input = new byte[random.nextInt(200)];
                random.nextBytes(input);
            } else {
                byte[] base = valid.get(random.nextInt(valid.size()));
                input = base.clone();
                if (kind == 1) {
                    for (int flips = 1 + random.nextInt(4); flips > 0; flips--) {
                        input[random.nextInt(input.length)] ^= (byte) (1 + random.nextInt(255));
                    }
                } else if (kind == 2) {
                    input = java.util.Arrays.copyOf(base, random.nextInt(base.length + 1));
                } else {
                    int len = random.nextInt(input.length + 8);
                    input[0] = (byte) (len >>> 24);
                    input[1] = (byte) (len >>> 16);
                    input[2] = (byte) (len >>> 8);
                    input[3] = (byte) len;
                }
            }
            EmbeddedChannel in = channel();
            try {
                for (int at = 0; at < input.length; ) {
                    int n = Math.min(input.length - at, 1 + random.nextInt(16));
                    in.writeInbound(Unpooled.wrappedBuffer(input, at, n));
                    at += n;
                }
                for (Object o; (o = in.readInbound()) != null; ) {
                    assertInstanceOf(Frame.class, o);
                }
            } catch (DecoderException expected) {
                refused++;
            } catch (RuntimeException | Error e) {
                throw new AssertionError("round " + round + ": " + e, e);
            } finally {
                in.finishAndReleaseAll();
            }
        }
        assertTrue(refused > 1000, "most mutations are refused: " + refused);
    }
}
