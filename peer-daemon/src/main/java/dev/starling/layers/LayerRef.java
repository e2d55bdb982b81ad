package dev.starling.layers;

import dev.starling.registry.Descriptor;
import dev.starling.registry.Digest;
import dev.starling.registry.ImageReference;

/**
 * One eStargz layer of an image, as resolved from its manifest: where its blob is, and the TOC
 * digest that the manifest vouches for (the trust anchor of everything read from it).
 */
public record LayerRef(ImageReference repository, Descriptor descriptor, String tocDigest) {
    public Digest digest() {
        return descriptor.digest();
    }
}
