package dev.starling.estargz.write;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import java.util.zip.Deflater;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;

/** A small member gets whichever of zlib's two strategies compresses it smaller, and stays a valid gzip member. */
class MemberWriterTest {
    private static int deflated(byte[] data, int strategy) {
        Deflater d = new Deflater(9, true);
        d.setStrategy(strategy);
        d.setInput(data);
        d.finish();
        byte[] out = new byte[data.length * 2 + 64];
        int n = 0;
        while (!d.finished()) {
            n += d.deflate(out, n, out.length - n);
        }
        d.end();
        return n + 18; // gzip header and trailer
    }

    @Test
    void textOfHexDigestsAndBinariesEachGetTheirSmallerForm() throws Exception {
        Random random = new Random(7);
        StringBuilder hex = new StringBuilder();
        for (int i = 0; i < 600; i++) {
            hex.append("line ").append(i % 13).append(' ').append(Integer.toHexString(random.nextInt())).append('\n');
        }
        byte[] text = hex.toString().getBytes(StandardCharsets.US_ASCII);
        byte[] binary = new byte[40_000];
        for (int i = 0; i < binary.length; i++) { // machine code-like: repeats with short random runs
            binary[i] = (byte) (i % 97 < 60 ? i % 7 : random.nextInt(4));
        }
        for (byte[] data : List.of(text, binary)) {
            byte[] member = MemberWriter.compressMember(List.of(data), data.length, 9);
            int best = Math.min(deflated(data, Deflater.DEFAULT_STRATEGY), deflated(data, Deflater.FILTERED));
            assertEquals(best, member.length, "the smaller of the two strategies");
            try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(member))) {
                assertArrayEquals(data, in.readAllBytes());
            }
        }
        assertTrue(deflated(text, Deflater.FILTERED) < deflated(text, Deflater.DEFAULT_STRATEGY),
                "hex text is what Z_FILTERED is for (as Go's flate, the reference's deflater, finds)");
    }
}
