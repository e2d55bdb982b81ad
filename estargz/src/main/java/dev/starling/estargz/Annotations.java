package dev.starling.estargz;

/** The OCI descriptor annotations that make a layer an eStargz layer to every runtime and snapshotter. */
public final class Annotations {
    /** sha256 of the layer's TOC JSON ({@link EStargzBlob#tocDigest}): what a lazy reader verifies the TOC against. */
    public static final String TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest";
    /** The layer's uncompressed size in bytes: what the runtime would otherwise learn only by decompressing it. */
    public static final String UNCOMPRESSED_SIZE = "io.containers.estargz.uncompressed-size";

    private Annotations() {
    }
}
