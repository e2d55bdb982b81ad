package dev.starling.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The store's path grammar: what each place in the tree may hold, and what is refused. */
class StorePathTest {
    static final String KEY = "sha256:" + "ab".repeat(32);
    final StorePath paths = new StorePath(ref -> {
        if (!ref.matches("[a-z0-9./:-]+")) {
            throw new IllegalArgumentException("not a reference");
        }
    });

    @Test
    void eachLevelOfTheTree() throws Exception {
        String image = StorePath.name("registry.local/app:v1");
        assertTrue(paths.parse("/").isRoot());
        assertTrue(paths.parse("/" + image).isRefDir());
        StorePath.Where layer = paths.parse("/" + image + "/" + KEY);
        assertTrue(layer.isKeyDir() && layer.isOwnDirectory());
        StorePath.Where inner = paths.parse("/" + image + "/" + KEY + "/diff/usr/lib/x.so");
        assertEquals("registry.local/app:v1", inner.ref());
        assertEquals(KEY, inner.key());
        assertTrue(inner.inDiff());
        assertEquals("/usr/lib/x.so", inner.inner());
        assertEquals("/", paths.parse("/" + image + "/" + KEY + "/info").inner());
    }

    @Test
    void whatIsNotBase64OrAReferenceOrADigestIsRefused() {
        assertThrows(StorePath.BadName.class, () -> paths.parse("/not base64!"));
        assertThrows(StorePath.BadName.class, () -> paths.parse("/" + StorePath.name("UPPER CASE")));
        String image = StorePath.name("registry.local/app:v1");
        assertThrows(StorePath.BadName.class, () -> paths.parse("/" + image + "/sha256:" + "AB".repeat(32)));
        assertThrows(StorePath.BadName.class, () -> paths.parse("/" + image + "/sha512:" + "ab".repeat(32)));
        assertThrows(StorePath.BadName.class, () -> paths.parse("/" + image + "/" + KEY.substring(0, 70)));
    }
}
