package dev.starling.registry;

import java.util.regex.Pattern;

/**
 * A validated content digest, {@code sha256:<64 lowercase hex>} (or sha512 with 128): the only form
 * in which a digest from a manifest, an index or a reference reaches the rest of Starling. A digest
 * ends up in paths, mount options and log lines, so nothing unchecked may pass for one.
 */
public record Digest(String algorithm, String hex) {
    private static final Pattern SHA256 = Pattern.compile("[a-f0-9]{64}");
    private static final Pattern SHA512 = Pattern.compile("[a-f0-9]{128}");

    public Digest {
        boolean valid = switch (algorithm) {
            case "sha256" -> SHA256.matcher(hex).matches();
            case "sha512" -> SHA512.matcher(hex).matches();
            default -> false;
        };
        if (!valid) {
            throw new IllegalArgumentException("\"" + printable(algorithm + ":" + hex)
                    + "\" is not a digest (sha256:<64 lowercase hex digits> or sha512:<128>)");
        }
    }

    /** Parses {@code algorithm:hex}; throws {@link IllegalArgumentException} saying what is wrong. */
    public static Digest parse(String text) {
        int colon = text == null ? -1 : text.indexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("\"" + printable(String.valueOf(text))
                    + "\" is not a digest (sha256:<64 lowercase hex digits>)");
        }
        return new Digest(text.substring(0, colon), text.substring(colon + 1));
    }

    /** The first 12 hex digits, as short ids are shown. */
    public String shortHex() {
        return hex.substring(0, 12);
    }

    @Override
    public String toString() {
        return algorithm + ":" + hex;
    }

    /** Outside input quoted in a message: control characters escaped, length capped. */
    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < 160; i++) {
            char c = s.charAt(i);
            b.append(c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? String.format("\\u%04x", (int) c) : String.valueOf(c));
        }
        return s.length() > 160 ? b + "..." : b.toString();
    }
}
