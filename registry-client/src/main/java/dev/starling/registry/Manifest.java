package dev.starling.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An image manifest or index exactly as the registry served it: the raw bytes (which the digest
 * covers) and a parsed view of the fields Starling uses; every other field stays in {@link #json()}.
 */
public final class Manifest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final byte[] raw;
    private final String mediaType;
    private final String digest;
    private final JsonNode json;

    private Manifest(byte[] raw, String mediaType, String digest, JsonNode json) {
        this.raw = raw;
        this.mediaType = mediaType;
        this.digest = digest;
        this.json = json;
    }

    /** Parses manifest bytes; {@code contentType} is the served Content-Type (may be null). */
    public static Manifest parse(byte[] raw, String contentType) throws RegistryException {
        JsonNode json;
        try {
            json = JSON.readTree(raw);
        } catch (IOException e) {
            throw new InvalidManifestException("manifest is not JSON: " + e.getMessage(), e);
        }
        if (json == null || !json.isObject()) {
            throw new InvalidManifestException("manifest is not a JSON object");
        }
        String mediaType = json.path("mediaType").asText("");
        if (mediaType.isEmpty() && contentType != null) {
            mediaType = contentType.split(";")[0].strip();
        }
        if (mediaType.isEmpty()) {
            mediaType = json.has("manifests") ? MediaTypes.OCI_INDEX : MediaTypes.OCI_MANIFEST;
        }
        if (!MediaTypes.MANIFESTS.contains(mediaType)) {
            throw new InvalidManifestException("unsupported manifest type " + mediaType);
        }
        Manifest m = new Manifest(raw.clone(), mediaType, sha256(raw), json);
        try {
            m.manifests();
            m.layers();
            if (json.has("config")) {
                m.config();
            }
        } catch (IllegalArgumentException e) {
            throw new InvalidManifestException("manifest " + m.digest + " is invalid: " + e.getMessage());
        }
        return m;
    }

    /** {@code sha256:<hex>} of {@code data}: the digest of a manifest or blob. */
    public static String sha256(byte[] data) {
        return digestString(newSha256().digest(data));
    }

    static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    static String digestString(byte[] sha256) {
        return "sha256:" + HexFormat.of().formatHex(sha256);
    }

    public byte[] raw() {
        return raw.clone();
    }

    public String mediaType() {
        return mediaType;
    }

    public String digest() {
        return digest;
    }

    public JsonNode json() {
        return json;
    }

    public boolean isIndex() {
        return MediaTypes.isIndex(mediaType);
    }

    public Descriptor config() {
        return descriptor(json.path("config"));
    }

    public List<Descriptor> layers() {
        return descriptors(json.path("layers"));
    }

    /** Index entries (platform manifests). */
    public List<Descriptor> manifests() {
        return descriptors(json.path("manifests"));
    }

    public Map<String, String> annotations() {
        return strings(json.path("annotations"));
    }

    /** The index entry for {@code platform}; throws listing the platforms there are. */
    public Descriptor select(Descriptor.Platform platform) throws RegistryException {
        List<String> seen = new ArrayList<>();
        for (Descriptor d : manifests()) {
            if (d.platform() != null && d.platform().matches(platform)) {
                return d;
            }
            seen.add(String.valueOf(d.platform()));
        }
        throw new InvalidManifestException("no manifest for platform " + platform + " (the index has " + seen + ")");
    }

    private static List<Descriptor> descriptors(JsonNode array) {
        List<Descriptor> out = new ArrayList<>();
        for (JsonNode n : array) {
            out.add(descriptor(n));
        }
        return out;
    }

    private static Descriptor descriptor(JsonNode n) {
        JsonNode p = n.path("platform");
        Descriptor.Platform platform = p.isObject() ? new Descriptor.Platform(p.path("os").asText(),
                p.path("architecture").asText(), p.path("variant").asText("")) : null;
        String digest = n.path("digest").asText("");
        Digest valid;
        try {
            valid = Digest.parse(digest);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("a descriptor's digest " + e.getMessage(), e);
        }
        return new Descriptor(n.path("mediaType").asText(""), valid, n.path("size").asLong(-1),
                strings(n.path("annotations")), platform);
    }

    private static Map<String, String> strings(JsonNode object) {
        Map<String, String> out = new LinkedHashMap<>();
        object.properties().forEach(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }
}
