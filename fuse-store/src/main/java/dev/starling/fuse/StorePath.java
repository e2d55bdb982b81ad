package dev.starling.fuse;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * The store's path grammar, apart from FUSE: {@code /<base64(image ref)>/<key>/<file>/<inner>}. A
 * path is the root, an image directory, a layer directory ({@code key} a sha256 digest), or a file
 * of one ({@code diff}, {@code info}, {@code blob}), with the path below {@code diff}.
 */
final class StorePath {
    static final String DIFF = "diff", INFO = "info", BLOB = "blob", USE = "use";
    /** How many decoded references are kept before the cache starts over. */
    private static final int REFERENCES_KEPT = 1024;

    /** A path in the store: the image, the layer, the file in the layer directory, and the path below {@code diff}. */
    record Where(String ref, String key, String file, String inner) {
        boolean isRoot() {
            return ref == null;
        }

        boolean isRefDir() {
            return ref != null && key == null;
        }

        boolean isKeyDir() {
            return key != null && file == null;
        }

        /** The root, an image directory or a layer directory: the store's own, not a layer's. */
        boolean isOwnDirectory() {
            return file == null;
        }

        boolean inDiff() {
            return DIFF.equals(file);
        }

        HeldLayers.Id layer() {
            return new HeldLayers.Id(ref, key);
        }
    }

    /** A name that is not what the store serves at its place (EINVAL). */
    static final class BadName extends Exception {
        BadName(String message) {
            super(message, null, false, false);
        }
    }

    private final Consumer<String> checkReference;
    /**
     * The image reference a top-level name stands for, decoded and checked once: every request of a
     * walk through a layer names it again (libfuse hands over whole paths), and parsing a reference
     * is the dearest part of finding a layer.
     */
    private final Map<String, String> references = new ConcurrentHashMap<>();

    /** @param checkReference throws IllegalArgumentException for what is not an image reference */
    StorePath(Consumer<String> checkReference) {
        this.checkReference = checkReference;
    }

    Where parse(String path) throws BadName {
        if (path.equals("/") || path.isEmpty()) {
            return new Where(null, null, null, null);
        }
        String[] parts = path.substring(1).split("/", 4);
        String ref = references.get(parts[0]);
        if (ref == null) {
            ref = reference(parts[0]);
        }
        if (parts.length == 1) {
            return new Where(ref, null, null, null);
        }
        if (!isDigest(parts[1])) {
            throw new BadName("not a sha256 digest");
        }
        if (parts.length == 2) {
            return new Where(ref, parts[1], null, null);
        }
        return new Where(ref, parts[1], parts[2], parts.length == 4 ? "/" + parts[3] : "/");
    }

    /** The top-level name of an image reference. */
    static String name(String imageRef) {
        return Base64.getEncoder().encodeToString(imageRef.getBytes(StandardCharsets.UTF_8));
    }

    private String reference(String name) throws BadName {
        String ref;
        try {
            ref = new String(Base64.getDecoder().decode(name), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new BadName("not base64");
        }
        try {
            checkReference.accept(ref);
        } catch (IllegalArgumentException e) {
            throw new BadName("not an image reference: " + e.getMessage());
        }
        if (references.size() >= REFERENCES_KEPT) {
            references.clear();
        }
        references.put(name, ref);
        return ref;
    }

    /** {@code sha256:} and 64 lowercase hex digits (a layer key), checked without a regex per request. */
    static boolean isDigest(String s) {
        if (s.length() != 71 || !s.startsWith("sha256:")) {
            return false;
        }
        for (int i = 7; i < 71; i++) {
            char c = s.charAt(i);
            if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) {
                return false;
            }
        }
        return true;
    }
}
