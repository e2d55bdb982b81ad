package dev.starling.estargz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The fixed-size trailer that says where a blob's TOC starts (compat doc section 1.3).
 *
 * @param format             which footer layout was found
 * @param tocOffset          compressed offset of the TOC member (gzip) or of the TOC zstd frame
 * @param tocCompressedSize  compressed TOC length in bytes
 * @param tocUncompressedSize raw TOC length when the footer records it (zstd), else -1
 */
public record Footer(Format format, long tocOffset, long tocCompressedSize, long tocUncompressedSize) {

    public enum Format {
        /** Current eStargz: 51-byte gzip member with an SG subfield. */
        ESTARGZ(51),
        /** CRFS-era stargz: 47-byte gzip member whose whole FEXTRA is the offset. */
        LEGACY_STARGZ(47),
        /** stargz-snapshotter's zstd:chunked: a 40-byte payload in a zstd skippable frame. */
        ZSTD_CHUNKED(48);

        public final int length;

        Format(int length) {
            this.length = length;
        }
    }

    /** The most trailing bytes any decoder looks at. */
    public static final int MAX_LENGTH = 72;

    private static final byte[] MAGIC = "STARGZ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] ZSTD_MAGIC = "GnUlInUx".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] CONTAINERS_ZSTD_MAGIC = "GNUlInUx".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] EXTERNAL_TOC = "STARGZEXTERNALTOC".getBytes(StandardCharsets.US_ASCII);
    private static final int ZSTD_SKIPPABLE_MAGIC = 0x184D2A50;

    /** The 51-byte eStargz footer for a TOC at {@code tocOffset}. */
    public static byte[] estargz(long tocOffset) {
        ByteBuffer b = ByteBuffer.allocate(51).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x1f, (byte) 0x8b, 8, 4, 0, 0, 0, 0, 0, (byte) 0xff});
        b.putShort((short) 26).put((byte) 'S').put((byte) 'G').putShort((short) 22);
        b.put(offsetField(tocOffset));
        b.put(EMPTY_DEFLATE_AND_TRAILER);
        return b.array();
    }

    /** The 47-byte legacy stargz footer, for writing test vectors of old producers. */
    public static byte[] legacyStargz(long tocOffset) {
        ByteBuffer b = ByteBuffer.allocate(47).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x1f, (byte) 0x8b, 8, 4, 0, 0, 0, 0, 0, (byte) 0xff});
        b.putShort((short) 22);
        b.put(offsetField(tocOffset));
        b.put(EMPTY_DEFLATE_AND_TRAILER);
        return b.array();
    }

    /** The 48-byte zstd:chunked (stargz dialect) footer. */
    public static byte[] zstdChunked(long tocFrameOffset, long compressedLength, long rawLength) {
        ByteBuffer b = ByteBuffer.allocate(48).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(ZSTD_SKIPPABLE_MAGIC).putInt(40);
        b.putLong(tocFrameOffset).putLong(compressedLength).putLong(rawLength).putLong(1);
        b.put(ZSTD_MAGIC);
        return b.array();
    }

    // One empty stored deflate block (BFINAL=1, LEN=0, NLEN=0xffff), then CRC32 = 0 and ISIZE = 0.
    private static final byte[] EMPTY_DEFLATE_AND_TRAILER = {1, 0, 0, (byte) 0xff, (byte) 0xff, 0, 0, 0, 0, 0, 0, 0, 0};

    private static byte[] offsetField(long tocOffset) {
        if (tocOffset < 0) {
            throw new IllegalArgumentException("negative TOC offset " + tocOffset);
        }
        return (String.format("%016x", tocOffset) + "STARGZ").getBytes(StandardCharsets.US_ASCII);
    }

    /**
     * Decodes the footer at the end of {@code tail}, the last bytes of a blob of {@code blobSize}
     * bytes. Tries each layout in the reference reader's order and reports every failure together.
     */
    public static Footer decode(byte[] tail, long blobSize) throws InvalidBlobException {
        List<String> errors = new ArrayList<>();
        for (Format format : Format.values()) {
            if (tail.length < format.length) {
                errors.add(format + ": blob is only " + tail.length + " bytes");
                continue;
            }
            try {
                Footer footer = switch (format) {
                    case ESTARGZ -> decodeGzip(tail, tail.length - 51, 51, true, blobSize);
                    case LEGACY_STARGZ -> decodeGzip(tail, tail.length - 47, 47, false, blobSize);
                    case ZSTD_CHUNKED -> decodeZstd(tail, tail.length - 48);
                };
                footer.checkFits(blobSize);
                return footer;
            } catch (InvalidBlobException e) {
                errors.add(format + ": " + e.getMessage());
            }
        }
        if (endsWith(tail, CONTAINERS_ZSTD_MAGIC)) {
            throw new UnsupportedFormatException("this is a containers/storage zstd:chunked blob (footer magic "
                    + "GNUlInUx); only stargz-snapshotter's zstd:chunked dialect and eStargz are supported");
        }
        if (tail.length >= 46 && contains(tail, tail.length - 46 + 16, EXTERNAL_TOC)) {
            throw new UnsupportedFormatException("this eStargz blob keeps its TOC in a separate image "
                    + "(external TOC footer); external TOCs are not supported yet");
        }
        throw new InvalidBlobException("no eStargz footer at the end of the blob (" + String.join("; ", errors) + ")");
    }

    private void checkFits(long blobSize) throws InvalidBlobException {
        if (format != Format.ZSTD_CHUNKED && tocCompressedSize <= 0) {
            throw new InvalidBlobException("TOC offset " + tocOffset + " is past the end of the "
                    + blobSize + "-byte blob");
        }
        if (format == Format.ZSTD_CHUNKED && (tocOffset < 8 || tocOffset + tocCompressedSize > blobSize - format.length)) {
            throw new InvalidBlobException("TOC frame [" + tocOffset + ", +" + tocCompressedSize
                    + ") is outside the " + blobSize + "-byte blob");
        }
    }

    private static Footer decodeGzip(byte[] b, int at, int length, boolean subfield, long blobSize) throws InvalidBlobException {
        if ((b[at] & 0xff) != 0x1f || (b[at + 1] & 0xff) != 0x8b || b[at + 2] != 8) {
            throw new InvalidBlobException("not a gzip member");
        }
        if ((b[at + 3] & 4) == 0) {
            throw new InvalidBlobException("gzip member has no FEXTRA field");
        }
        int xlen = le16(b, at + 10);
        int extra = at + 12;
        int offsetField;
        if (subfield) {
            if (xlen != 26 || b[extra] != 'S' || b[extra + 1] != 'G' || le16(b, extra + 2) != 22) {
                throw new InvalidBlobException("FEXTRA is not a 22-byte SG subfield");
            }
            offsetField = extra + 4;
        } else {
            if (xlen != 22) {
                throw new InvalidBlobException("FEXTRA length is " + xlen + ", not 22");
            }
            offsetField = extra;
        }
        if (!contains(b, offsetField + 16, MAGIC)) {
            throw new InvalidBlobException("FEXTRA does not end in STARGZ");
        }
        if (extra + xlen + 13 != at + length) {
            throw new InvalidBlobException("trailing bytes after the footer member");
        }
        long tocOffset = 0;
        for (int i = 0; i < 16; i++) {
            int digit = Character.digit(b[offsetField + i], 16);
            if (digit < 0) {
                throw new InvalidBlobException("TOC offset field is not 16 hex digits");
            }
            tocOffset = (tocOffset << 4) | digit;
        }
        if (tocOffset < 0) {
            throw new InvalidBlobException("TOC offset does not fit in 63 bits");
        }
        return new Footer(subfield ? Format.ESTARGZ : Format.LEGACY_STARGZ, tocOffset, blobSize - tocOffset - length, -1);
    }

    private static Footer decodeZstd(byte[] b, int at) throws InvalidBlobException {
        ByteBuffer buf = ByteBuffer.wrap(b, at, 48).order(ByteOrder.LITTLE_ENDIAN);
        if (buf.getInt() != ZSTD_SKIPPABLE_MAGIC || buf.getInt() != 40) {
            throw new InvalidBlobException("not a 40-byte zstd skippable frame");
        }
        long offset = buf.getLong();
        long compressed = buf.getLong();
        long raw = buf.getLong();
        long type = buf.getLong();
        if (!contains(b, at + 40, ZSTD_MAGIC)) {
            throw new InvalidBlobException("magic is not GnUlInUx");
        }
        if (type != 1) {
            throw new InvalidBlobException("manifest type " + type + " is not 1 (CRFS)");
        }
        if (offset < 0 || compressed <= 0 || raw < 0) {
            throw new InvalidBlobException("negative TOC position");
        }
        return new Footer(Format.ZSTD_CHUNKED, offset, compressed, raw);
    }

    /** Where chunk payload ends: data entries may not reach past it. */
    public long payloadEnd() {
        return format == Format.ZSTD_CHUNKED ? tocOffset - 8 : tocOffset;
    }

    private static int le16(byte[] b, int at) {
        return (b[at] & 0xff) | (b[at + 1] & 0xff) << 8;
    }

    private static boolean endsWith(byte[] b, byte[] suffix) {
        return b.length >= suffix.length && contains(b, b.length - suffix.length, suffix);
    }

    private static boolean contains(byte[] b, int at, byte[] what) {
        if (at < 0 || at + what.length > b.length) {
            return false;
        }
        for (int i = 0; i < what.length; i++) {
            if (b[at + i] != what[i]) {
                return false;
            }
        }
        return true;
    }
}
