package dev.starling.snapshot;

import dev.starling.estargz.Annotations;
import dev.starling.fuse.LayerMount;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.MountTable;
import dev.starling.fuse.StateFile;
import dev.starling.layers.ImageResolver;
import dev.starling.layers.OpenLayers;
import dev.starling.layers.LayerRef;
import dev.starling.registry.Descriptor;
import dev.starling.registry.Digest;
import dev.starling.registry.ImageReference;
import dev.starling.registry.MediaTypes;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * Remote layers for the snapshotter from the node's open layers: the image and layer the labels
 * name (the CRI's {@code containerd.io/snapshot/cri.*} labels, else {@code ctr-remote}'s
 * {@code containerd.io/snapshot/remote/stargz.*}), verified against the TOC digest label, which is
 * required, each mounted through FUSE where containerd's overlay takes it as a lower directory.
 * Resolving the image opens its other eStargz layers ahead, so the next Prepares are quick.
 */
final class LazyLayerMounts implements RemoteLayerMounts {
    private static final Logger LOG = Logger.getLogger(LazyLayerMounts.class.getName());
    static final String CRI_IMAGE = "containerd.io/snapshot/cri.image-ref";
    static final String CRI_LAYER = "containerd.io/snapshot/cri.layer-digest";
    static final String STARGZ_IMAGE = "containerd.io/snapshot/remote/stargz.reference";
    static final String STARGZ_LAYER = "containerd.io/snapshot/remote/stargz.digest";

    private final ImageResolver images;
    private final MountOptions options;
    private final Map<Path, Mounted> mounted = new ConcurrentHashMap<>();

    private record Mounted(OpenLayers.Layer layer, LayerMount mount) {
    }

    LazyLayerMounts(ImageResolver images, MountOptions options) {
        this.images = images;
        this.options = options;
    }

    private static String label(Map<String, String> labels, String first, String second, String what) throws IOException {
        String v = labels.getOrDefault(first, labels.get(second));
        if (v == null || v.isEmpty()) {
            throw new IOException("no " + what + " label (" + first + " or " + second + "); with CRI, set "
                    + "disable_snapshot_annotations = false");
        }
        return v;
    }

    @Override
    public synchronized void mount(Path dir, Map<String, String> labels) throws IOException {
        String imageRef = label(labels, CRI_IMAGE, STARGZ_IMAGE, "image reference");
        String layerDigest = label(labels, CRI_LAYER, STARGZ_LAYER, "layer digest");
        String toc = tocLabel(labels);
        ImageResolver.Image image = images.resolve(ImageReference.parse(imageRef));
        int index = image.indexOf(layerDigest);
        if (index < 0 || !image.layers().get(index).digest().toString().equals(layerDigest)) {
            throw new IOException(imageRef + " has no layer " + layerDigest);
        }
        String manifestToc = image.layers().get(index).annotations().get(Annotations.TOC_DIGEST);
        if (!toc.equals(manifestToc)) {
            throw new IOException("layer " + layerDigest + ": the TOC digest label " + toc + " is not the manifest's "
                    + manifestToc);
        }
        mountLayer(dir, images.acquire(image, index), image.ref());
    }

    private static String tocLabel(Map<String, String> labels) throws IOException {
        String toc = labels.get(Annotations.TOC_DIGEST);
        if (toc == null || toc.isEmpty()) {
            throw new IOException("no " + Annotations.TOC_DIGEST + " label: the layer is not eStargz, or its TOC "
                    + "cannot be verified");
        }
        return toc;
    }

    private void mountLayer(Path dir, OpenLayers.Layer layer, ImageReference ref) throws IOException {
        try {
            unmountQuietly(dir);
            LayerMount mount = LayerMount.mount(layer.blob().index(), layer.reader(), dir,
                    ref.repository() + "@" + layer.digest().shortHex(),
                    new StateFile(layer.digest() + ".json", layer.reader()::stateJson), options);
            mounted.put(dir, new Mounted(layer, mount));
        } catch (IOException | RuntimeException e) {
            images.release(layer);
            throw e;
        }
    }

    /**
     * A committed layer mounted again (after a restart) from its persisted labels, without the
     * manifest: the TOC digest label was checked against the manifest when the layer was first
     * mounted, and the node kept the layer's footer and TOC, so with its chunks in the disk tier or
     * on peers it opens and reads while the registry is down.
     */
    private synchronized void remount(Path dir, Map<String, String> labels) throws IOException {
        ImageReference ref = ImageReference.parse(label(labels, CRI_IMAGE, STARGZ_IMAGE, "image reference"));
        Digest digest = Digest.parse(label(labels, CRI_LAYER, STARGZ_LAYER, "layer digest"));
        String toc = tocLabel(labels);
        Descriptor layer = new Descriptor(MediaTypes.OCI_LAYER_GZIP, digest, -1, Map.of(Annotations.TOC_DIGEST, toc), null);
        mountLayer(dir, images.layers().acquire(images.client(), new LayerRef(ref, layer, toc)), ref);
    }

    @Override
    public void check(Path dir, Map<String, String> labels) throws IOException {
        Mounted m = mounted.get(dir);
        if (m != null && !MountTable.isDead(dir) && MountTable.at(dir).isPresent()) {
            return;
        }
        LOG.info("mounting the remote layer at " + dir + " again");
        remount(dir, labels);
    }

    @Override
    public synchronized void unmount(Path dir) {
        unmountQuietly(dir);
    }

    private void unmountQuietly(Path dir) {
        Mounted m = mounted.remove(dir);
        if (m != null) {
            try {
                m.mount().close();
            } catch (IOException e) {
                LOG.warning("unmounting " + dir + ": " + e.getMessage());
            }
            images.release(m.layer());
        }
    }

    /** Unmounts every layer (the daemon is stopping). */
    synchronized void close() {
        for (Path dir : java.util.List.copyOf(mounted.keySet())) {
            unmountQuietly(dir);
        }
    }
}
