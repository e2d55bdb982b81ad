package dev.starling.registry;

import java.util.Map;

/**
 * A content descriptor: what a manifest says about a config, a layer or a platform manifest.
 *
 * @param platform only on index entries, else null
 */
public record Descriptor(String mediaType, Digest digest, long size, Map<String, String> annotations,
                         Platform platform) {
    public Descriptor {
        // sorted, so a manifest written from descriptors has the same bytes on every run
        annotations = annotations == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(annotations));
    }

    /** {@code os/architecture[/variant]}, as in {@code --platform linux/arm64/v8}. */
    public record Platform(String os, String architecture, String variant) {
        public static Platform parse(String text) {
            String[] parts = text.split("/");
            if (parts.length < 2 || parts.length > 3) {
                throw new IllegalArgumentException("platform \"" + text + "\" is not os/arch[/variant]");
            }
            return new Platform(parts[0], parts[1], parts.length == 3 ? parts[2] : "");
        }

        public boolean matches(Platform wanted) {
            return os.equals(wanted.os) && architecture.equals(wanted.architecture)
                    && (wanted.variant.isEmpty() || wanted.variant.equals(variant));
        }

        @Override
        public String toString() {
            return os + "/" + architecture + (variant.isEmpty() ? "" : "/" + variant);
        }
    }
}
