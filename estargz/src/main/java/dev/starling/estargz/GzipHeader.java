package dev.starling.estargz;

/** Parses the RFC 1952 member header so the raw deflate stream behind it can be inflated. */
final class GzipHeader {
    private static final int FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16;

    private GzipHeader() {
    }

    /** Returns the offset of the deflate data behind the header at the start of {@code b}. */
    static int skip(byte[] b) throws InvalidBlobException {
        if (b.length < 10 || (b[0] & 0xff) != 0x1f || (b[1] & 0xff) != 0x8b || b[2] != 8) {
            throw new InvalidBlobException("no gzip member starts here");
        }
        int flags = b[3] & 0xff;
        int pos = 10;
        if ((flags & FEXTRA) != 0) {
            if (pos + 2 > b.length) {
                throw new InvalidBlobException("truncated gzip header");
            }
            pos += 2 + ((b[pos] & 0xff) | (b[pos + 1] & 0xff) << 8);
        }
        if ((flags & FNAME) != 0) {
            pos = afterNul(b, pos);
        }
        if ((flags & FCOMMENT) != 0) {
            pos = afterNul(b, pos);
        }
        if ((flags & FHCRC) != 0) {
            pos += 2;
        }
        if (pos > b.length) {
            throw new InvalidBlobException("truncated gzip header");
        }
        return pos;
    }

    private static int afterNul(byte[] b, int pos) throws InvalidBlobException {
        while (pos < b.length && b[pos] != 0) {
            pos++;
        }
        if (pos >= b.length) {
            throw new InvalidBlobException("truncated gzip header");
        }
        return pos + 1;
    }
}
