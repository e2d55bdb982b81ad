package dev.starling.estargz;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** The {@code sha256:<64 hex>} digest strings of the OCI world, as raw 32-byte values. */
public final class Digests {
    public static final String PREFIX = "sha256:";
    private static final HexFormat HEX = HexFormat.of();

    private Digests() {
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    public static byte[] sha256(byte[] data, int offset, int length) {
        MessageDigest md = sha256();
        md.update(data, offset, length);
        return md.digest();
    }

    public static String format(byte[] sha256) {
        return PREFIX + HEX.formatHex(sha256);
    }

    /** Parses {@code sha256:<hex>}; throws with the offending text otherwise. */
    public static byte[] parse(String digest) throws InvalidBlobException {
        if (digest == null || !digest.startsWith(PREFIX) || digest.length() != PREFIX.length() + 64) {
            throw new InvalidBlobException("not a sha256 digest: " + quote(digest));
        }
        try {
            String hex = digest.substring(PREFIX.length());
            if (!hex.equals(hex.toLowerCase(java.util.Locale.ROOT))) {
                throw new IllegalArgumentException("upper case");
            }
            return HEX.parseHex(hex);
        } catch (IllegalArgumentException e) {
            throw new InvalidBlobException("not a sha256 digest: " + quote(digest));
        }
    }

    static String quote(String s) {
        if (s == null) {
            return "(none)";
        }
        return '"' + (s.length() > 100 ? s.substring(0, 100) + "..." : s) + '"';
    }
}
