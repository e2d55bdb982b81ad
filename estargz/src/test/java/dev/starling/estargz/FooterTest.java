package dev.starling.estargz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** Ports the reference footer tests (compat doc 1.3 and 6.1). */
class FooterTest {
    private static final HexFormat HEX = HexFormat.of();

    @Test
    void estargzFooterMatchesTheSpecVector() {
        assertEquals("1f8b08040000000000ff1a00534716003030303030303030303030303132333453544152475a010000ffff0000000000000000",
                HEX.formatHex(Footer.estargz(0x1234)));
    }

    @Test
    void legacyFooterMatchesTheSpecVector() {
        assertEquals("1f8b08040000000000ff16003030303030303030303030303132333453544152475a010000ffff0000000000000000",
                HEX.formatHex(Footer.legacyStargz(0x1234)));
    }

    @Test
    void zstdFooterMatchesTheSpecVector() throws Exception {
        byte[] footer = HEX.parseHex("502a4d182800000008100000000000002c01000000000000e8030000000000000100000000000000476e556c496e5578");
        assertEquals(HEX.formatHex(footer), HEX.formatHex(Footer.zstdChunked(4104, 300, 1000)));
        Footer f = Footer.decode(footer, 4104 + 300 + 48);
        assertEquals(new Footer(Footer.Format.ZSTD_CHUNKED, 4104, 300, 1000), f);
    }

    @Test
    void everyOffsetRoundTripsThroughBothGzipFooters() throws Exception {
        for (long off = 0; off <= 200_000; off += 1023) {
            Footer current = Footer.decode(Footer.estargz(off), off + 100 + 51);
            assertEquals(Footer.Format.ESTARGZ, current.format());
            assertEquals(off, current.tocOffset());
            assertEquals(100, current.tocCompressedSize());
            Footer legacy = Footer.decode(Footer.legacyStargz(off), off + 100 + 47);
            assertEquals(Footer.Format.LEGACY_STARGZ, legacy.format());
            assertEquals(off, legacy.tocOffset());
            assertEquals(100, legacy.tocCompressedSize());
        }
    }

    @Test
    void emptyShortAndNilExtraFieldsAreErrorsNotCrashes() {
        byte[] noExtra = {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, (byte) 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        byte[] emptyExtra = {0x1f, (byte) 0x8b, 8, 4, 0, 0, 0, 0, 0, (byte) 0xff, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        byte[] shortExtra = {0x1f, (byte) 0x8b, 8, 4, 0, 0, 0, 0, 0, (byte) 0xff, 2, 0, 'S', 'G', 3, 0, 0, 0, 0, 0, 0,
                0, 0, 0};
        for (byte[] tail : new byte[][] {noExtra, emptyExtra, shortExtra, new byte[0], new byte[51], new byte[47]}) {
            byte[] padded = new byte[60 + tail.length];
            System.arraycopy(tail, 0, padded, 60, tail.length);
            assertThrows(InvalidBlobException.class, () -> Footer.decode(tail, 1000));
            assertThrows(InvalidBlobException.class, () -> Footer.decode(padded, 1000));
        }
    }

    @Test
    void tocOffsetPastTheEndIsRejected() {
        InvalidBlobException e = assertThrows(InvalidBlobException.class,
                () -> Footer.decode(Footer.estargz(5000), 4000));
        assertTrue(e.getMessage().contains("past the end"), e.getMessage());
    }

    @Test
    void nonHexOffsetIsRejected() {
        byte[] f = Footer.estargz(0x1234);
        f[20] = 'z';
        assertThrows(InvalidBlobException.class, () -> Footer.decode(f, 100_000));
    }

    @Test
    void containersStorageZstdIsNamedAsUnsupported() {
        byte[] tail = new byte[72];
        System.arraycopy("GNUlInUx".getBytes(), 0, tail, 64, 8);
        UnsupportedFormatException e = assertThrows(UnsupportedFormatException.class, () -> Footer.decode(tail, 10_000));
        assertTrue(e.getMessage().contains("containers/storage"), e.getMessage());
    }

    @Test
    void externalTocIsNamedAsUnsupported() {
        byte[] f = new byte[46];
        byte[] head = {0x1f, (byte) 0x8b, 8, 4, 0, 0, 0, 0, 0, (byte) 0xff, 21, 0, 'S', 'G', 17, 0};
        System.arraycopy(head, 0, f, 0, head.length);
        System.arraycopy("STARGZEXTERNALTOC".getBytes(), 0, f, 16, 17);
        System.arraycopy(new byte[] {1, 0, 0, (byte) 0xff, (byte) 0xff}, 0, f, 33, 5);
        UnsupportedFormatException e = assertThrows(UnsupportedFormatException.class,
                () -> Footer.decode(Arrays.copyOf(f, 46), 10_000));
        assertTrue(e.getMessage().contains("external"), e.getMessage());
    }
}
