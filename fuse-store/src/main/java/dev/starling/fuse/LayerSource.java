package dev.starling.fuse;

import java.io.IOException;
import java.nio.file.NoSuchFileException;

/** Where the store's layers come from: the node daemon resolves images and opens layers. */
public interface LayerSource {
    /**
     * Checks that {@code imageRef} is an image reference.
     *
     * @throws IllegalArgumentException when it is not (the lookup gets EINVAL)
     */
    void checkReference(String imageRef);

    /**
     * Opens the layer {@code key} (a TOC digest or a compressed layer digest) of {@code imageRef}.
     *
     * @throws NoSuchFileException no such image or layer, or the layer is not eStargz (ENOENT)
     * @throws IOException         it could not be resolved now (EIO)
     */
    ServedLayer open(String imageRef, String key) throws IOException;
}
