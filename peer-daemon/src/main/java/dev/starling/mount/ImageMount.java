package dev.starling.mount;

import dev.starling.layers.OpenLayers;
import dev.starling.layers.LayerRef;
import dev.starling.layers.LayerRefs;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.LayerReader;
import dev.starling.fuse.LayerMount;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.MountTable;
import dev.starling.fuse.StateFile;
import dev.starling.fuse.SystemCommand;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * An image's eStargz layers mounted lazily and overlaid read-only (kernel overlayfs,
 * {@code nosuid,nodev}) at one directory: files appear at once, bytes arrive when read, every
 * chunk verified against its layer's TOC, every TOC against the manifest. The layers come from the
 * node's {@link OpenLayers} (one per blob, shared with every other image and front end that uses
 * it), each served by its own FUSE mount under the work directory.
 */
public final class ImageMount implements AutoCloseable {
    /** The overlay's source in the mount table: how a target served by `starling mount` is recognised. */
    static final String OVERLAY_SOURCE = "starling";
    private static final Logger LOG = Logger.getLogger(ImageMount.class.getName());

    private final Path target;
    private final OpenLayers openLayers;
    private final List<OpenLayers.Layer> layers = new ArrayList<>();
    private final List<LayerMount> mounts = new ArrayList<>();
    /** A store this mount made for itself (standalone `starling mount`), closed with it; else null. */
    private final AutoCloseable owned;
    private long bytesAtReady;
    private boolean overlaid;

    private ImageMount(Path target, OpenLayers openLayers, AutoCloseable owned) {
        this.target = target;
        this.openLayers = openLayers;
        this.owned = owned;
    }

    /** Mounts {@code ref} at {@code target} with the default options and a store of its own; layer mounts live under {@code workDir}. */
    public static ImageMount mount(RegistryClient client, ImageReference ref, Descriptor.Platform platform,
                                   Path target, Path workDir, DiskChunkCache disk) throws IOException {
        return mount(client, ref, platform, target, workDir, disk, FetchOptions.DEFAULTS, MountOptions.DEFAULTS);
    }

    /** Mounts {@code ref} at {@code target} through a chunk store of its own (what a standalone `starling mount` is). */
    public static ImageMount mount(RegistryClient client, ImageReference ref, Descriptor.Platform platform,
                                   Path target, Path workDir, DiskChunkCache disk, FetchOptions fetchOptions,
                                   MountOptions mountOptions) throws IOException {
        ChunkStore store = new ChunkStore(disk, ChunkStore.DEFAULT_MEMORY_BYTES, fetchOptions);
        OpenLayers layers = new OpenLayers(store);
        try {
            return mount(client, ref, platform, target, workDir, layers, mountOptions, () -> {
                layers.close();
                store.close();
            });
        } catch (IOException | RuntimeException e) {
            layers.close();
            store.close();
            throw e;
        }
    }

    /** Mounts {@code ref} at {@code target} from the node's open layers; layer mounts live under {@code workDir}. */
    public static ImageMount mount(RegistryClient client, ImageReference ref, Descriptor.Platform platform,
                                   Path target, Path workDir, OpenLayers openLayers, MountOptions mountOptions)
            throws IOException {
        return mount(client, ref, platform, target, workDir, openLayers, mountOptions, null);
    }

    private static ImageMount mount(RegistryClient client, ImageReference ref, Descriptor.Platform platform,
                                    Path target, Path workDir, OpenLayers openLayers, MountOptions mountOptions,
                                    AutoCloseable owned) throws IOException {
        clearStaleOverlay(target);
        List<LayerRef> refs = LayerRefs.resolve(client, ref, platform);
        ImageMount image = new ImageMount(target, openLayers, owned);
        try {
            for (int i = 0; i < refs.size(); i++) {
                LayerRef layerRef = refs.get(i);
                OpenLayers.Layer layer = openLayers.acquire(client, layerRef);
                image.layers.add(layer);
                image.mounts.add(LayerMount.mount(layer.blob().index(), layer.reader(), workDir.resolve("layer-" + i),
                        ref.repository() + "@" + layerRef.digest().shortHex(),
                        new StateFile(layerRef.digest() + ".json", layer.reader()::stateJson), mountOptions));
            }
            image.bytesAtReady = image.bytesFetched();
            image.overlay(workDir, mountOptions);
        } catch (IOException | RuntimeException e) {
            image.closeQuietly();
            throw e;
        }
        return image;
    }

    /**
     * A `starling mount` killed with -9 leaves its overlay at the target over dead layer mounts: both
     * answer "Transport endpoint is not connected". Clear them; refuse a target a live mount serves.
     */
    static void clearStaleOverlay(Path target) throws IOException {
        clearDeadOverlay(target);
        if (MountTable.at(target).filter(ImageMount::isStarlingOverlay).isPresent()) {
            throw new IOException(target + " is already served by a running `starling mount`; "
                    + "run `starling umount " + target + "` first");
        }
        for (Path cleared : MountTable.clearDeadLayerMounts()) {
            LOG.info("cleared the dead layer mount " + cleared + " a killed daemon left");
        }
    }

    /** Detaches the dead overlay(s) at {@code target} a killed `starling mount` left, if any. */
    public static void clearDeadOverlay(Path target) throws IOException {
        for (int stacked = 0; stacked < 16 && MountTable.isDead(target); stacked++) {
            // --no-canonicalize: resolving the path would stat the dead mount and fail with "not mounted"
            SystemCommand.run("umount", "-l", "--no-canonicalize", target.toAbsolutePath().normalize().toString());
        }
        if (MountTable.isDead(target)) {
            throw new IOException(target + " is a dead mount that `umount -l` did not clear; unmount it by hand");
        }
    }

    private void overlay(Path workDir, MountOptions mountOptions) throws IOException {
        Files.createDirectories(target);
        // overlayfs without an upper dir needs two lower dirs: an empty one at the bottom serves single-layer images.
        Path empty = Files.createDirectories(workDir.resolve("empty"));
        StringBuilder lower = new StringBuilder();
        for (int i = mounts.size() - 1; i >= 0; i--) {
            lower.append(mounts.get(i).mountPoint()).append(':');
        }
        lower.append(empty);
        SystemCommand.run("mount", "-t", "overlay", OVERLAY_SOURCE, "-o",
                "ro," + mountOptions.securityFlags() + ",lowerdir=" + lower, target.toString());
        overlaid = true;
    }

    public int layerCount() {
        return layers.size();
    }

    /** Range requests made to the registry so far for this image's layers. */
    public long requests() {
        return layers.stream().mapToLong(l -> l.remote().requests()).sum();
    }

    /** Compressed bytes fetched from the registry so far for this image's layers, footers and TOCs included. */
    public long bytesFetched() {
        return layers.stream().mapToLong(l -> l.remote().bytesRead()).sum();
    }

    /** The layers' read paths, bottom first: their progress and state. */
    public List<LayerReader> layerReaders() {
        return layers.stream().map(OpenLayers.Layer::reader).toList();
    }

    /** What mounting cost: footers and TOCs. */
    public long bytesAtReady() {
        return bytesAtReady;
    }

    /** Whether the overlay is still mounted at the target (someone may have run `starling umount`). */
    public boolean mounted() throws IOException {
        return MountTable.at(target).filter(ImageMount::isStarlingOverlay).isPresent();
    }

    private static boolean isStarlingOverlay(MountTable.Entry mount) {
        return mount.fsType().equals("overlay") && mount.source().equals(OVERLAY_SOURCE);
    }

    private void closeQuietly() {
        try {
            close();
        } catch (IOException e) {
            LOG.warning("cleaning up a failed mount of " + target + ": " + e.getMessage());
        }
    }

    @Override
    public void close() throws IOException {
        IOException failure = null;
        if (overlaid && mounted()) {
            try {
                SystemCommand.run("umount", "-l", target.toString());
            } catch (IOException e) {
                failure = e;
            }
        }
        for (LayerMount m : mounts) {
            try {
                m.close();
            } catch (IOException e) {
                failure = failure == null ? e : failure;
            }
        }
        for (OpenLayers.Layer layer : layers) {
            openLayers.release(layer);
        }
        if (owned != null) {
            try {
                owned.close();
            } catch (Exception e) {
                failure = failure == null ? new IOException(e) : failure;
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
