package dev.starling.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** A manifest is outside input: every digest in it is checked where it enters. */
class ManifestTest {
    private static byte[] manifestWithLayer(String digest) {
        String config = "sha256:" + "a".repeat(64);
        return ("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_MANIFEST + "\",\"config\":{\"mediaType\":\""
                + MediaTypes.OCI_CONFIG + "\",\"digest\":\"" + config + "\",\"size\":2},\"layers\":[{\"mediaType\":\""
                + MediaTypes.OCI_LAYER_GZIP + "\",\"digest\":\"" + digest + "\",\"size\":10}]}").getBytes(StandardCharsets.UTF_8);
    }

    @ParameterizedTest
    @ValueSource(strings = {"sha256:,suid,dev,ro", "sha256:abc",
            "sha256:A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0", "md5:abababababababababababababababab",
            "sha256:abababababababababababababababababababababababababababababababab,suid", "", "../../etc/passwd"})
    void aLayerDigestThatIsNotADigestIsRefusedWithTheManifest(String digest) {
        InvalidManifestException e = assertThrows(InvalidManifestException.class,
                () -> Manifest.parse(manifestWithLayer(digest), MediaTypes.OCI_MANIFEST));
        assertTrue(e.getMessage().contains("is not a digest"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
    void aValidDigestIsAValue(String digest) throws Exception {
        Descriptor layer = Manifest.parse(manifestWithLayer(digest), MediaTypes.OCI_MANIFEST).layers().getFirst();
        assertEquals(Digest.parse(digest), layer.digest());
        assertEquals(digest, layer.digest().toString());
        assertEquals("0123456789ab", layer.digest().shortHex());
    }
}
