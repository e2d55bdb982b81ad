package dev.starling.mount;

import dev.starling.convert.ImageConverter;
import dev.starling.estargz.EStargzBlob;
import dev.starling.fetch.DiskChunkCache;
import dev.starling.fetch.FetchOptions;
import dev.starling.fetch.FetchScheduler;
import dev.starling.fetch.LayerReader;
import dev.starling.fetch.MemoryChunkCache;
import dev.starling.fetch.RegistryRangeReader;
import dev.starling.fuse.LayerMount;
import dev.starling.fuse.MountOptions;
import dev.starling.fuse.MountTable;
import dev.starling.fuse.StateFile;
import dev.starling.fuse.SystemCommand;
import dev.starling.registry.Descriptor;
import dev.starling.registry.ImageReference;
import dev.starling.registry.Manifest;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * An image's eStargz layers mounted lazily, each read through a {@link LayerReader} (memory tier,
 * disk tier, then coalesced Range requests to the registry; tiers keyed by chunk digest and shared
 * by the layers), and overlaid read-only (kernel overlayfs) at one directory: files appear at once,
 * bytes arrive when read, every chunk verified against its layer's TOC, every TOC against the
 * manifest. Once mounted, each layer's prioritized area is prefetched and the rest fetched in the
 * background, as the {@link FetchOptions} say.
 */
public final class ImageMount implements AutoCloseable {
    /** Shared by the image's layers: decompressed chunks for FUSE's small reads of one chunk. */
    static final long MEMORY_TIER_BYTES = 256L << 20;
    /** The overlay's source in the mount table: how a target served by `starling mount` is recognised. */
    static final String OVERLAY_SOURCE = "starling";
    private static final Logger LOG = Logger.getLogger(ImageMount.class.getName());
    /** What is picked from a multi-platform image when no platform is asked for: this build's only one. */
    static final Descriptor.Platform DEFAULT_PLATFORM = Descriptor.Platform.parse("linux/amd64");

    private final Path target;
    private final List<LayerMount> layers;
    private final long bytesAtReady;
    private final List<RegistryRangeReader> remotes;
    private final List<LayerReader> readers;
    private final FetchScheduler scheduler;
    private boolean overlaid;

    private ImageMount(Path target, List<LayerMount> layers, List<RegistryRangeReader> remotes,
                       List<LayerReader> readers, FetchScheduler scheduler) {
        this.target = target;
        this.layers = layers;
        this.remotes = remotes;
        this.readers = readers;
        this.scheduler = scheduler;
        this.bytesAtReady = bytesFetched();
    }

    /** Mounts {@code ref} at {@code target} with the default options; layer mounts live under {@code workDir}. */
    public static ImageMount mount(RegistryClient client, ImageReference ref, Descriptor.Platform platform,
                                   Path target, Path workDir, DiskChunkCache disk) throws IOException {
        return mount(client, ref, platform, target, workDir, disk, FetchOptions.DEFAULTS, MountOptions.DEFAULTS);
    }

    /** Mounts {@code ref} at {@code target}; layer mounts live under {@code workDir}. */
    public static ImageMount mount(RegistryClient client, ImageReference ref, Descriptor.Platform platform,
                                   Path target, Path workDir, DiskChunkCache disk, FetchOptions fetchOptions,
                                   MountOptions mountOptions) throws IOException {
        clearStaleOverlay(target);
        MemoryChunkCache memory = new MemoryChunkCache(MEMORY_TIER_BYTES);
        FetchScheduler scheduler = new FetchScheduler(fetchOptions);
        Manifest manifest = client.manifest(ref);
        if (manifest.isIndex()) {
            Descriptor.Platform wanted = platform == null ? DEFAULT_PLATFORM : platform;
            manifest = client.manifest(ref.withDigest(manifest.select(wanted).digest().toString()));
        } else if (platform != null) {
            ImageConverter.requirePlatform(client, ref, manifest, platform);
        }
        List<Descriptor> descriptors = manifest.layers();
        List<LayerMount> mounted = new ArrayList<>();
        List<RegistryRangeReader> remotes = new ArrayList<>();
        List<LayerReader> readers = new ArrayList<>();
        ImageMount image = null;
        try {
            for (int i = 0; i < descriptors.size(); i++) {
                Descriptor d = descriptors.get(i);
                String toc = d.annotations().get(ImageConverter.TOC_DIGEST);
                if (toc == null) {
                    throw new IOException("layer " + (i + 1) + " of " + ref + " (" + d.digest() + ") has no "
                            + ImageConverter.TOC_DIGEST + " annotation: it is not eStargz, or its TOC cannot be "
                            + "trusted. Convert the image with `starling convert`.");
                }
                RegistryRangeReader remote = new RegistryRangeReader(client, ref, d.digest().toString());
                remotes.add(remote);
                EStargzBlob blob = EStargzBlob.open(remote, toc);
                LayerReader reader = new LayerReader(d.digest(), blob, remote, memory, disk, scheduler);
                readers.add(reader);
                mounted.add(LayerMount.mount(blob.index(), reader, workDir.resolve("layer-" + i),
                        ref.repository() + "@" + d.digest().shortHex(),
                        new StateFile(d.digest() + ".json", reader::stateJson), mountOptions));
            }
            image = new ImageMount(target, mounted, remotes, readers, scheduler);
            image.overlay(workDir, mountOptions);
        } catch (IOException | RuntimeException e) {
            if (image != null) {
                image.close();
            } else {
                for (LayerMount m : mounted) {
                    m.close();
                }
                for (LayerReader r : readers) {
                    r.close();
                }
                scheduler.close();
            }
            throw e;
        }
        for (LayerReader r : readers) {
            r.startFetching();
        }
        return image;
    }

    /**
     * A `starling mount` killed with -9 leaves its overlay at the target over dead layer mounts: both
     * answer "Transport endpoint is not connected". Clear them; refuse a target a live mount serves.
     */
    static void clearStaleOverlay(Path target) throws IOException {
        for (int stacked = 0; stacked < 16 && MountTable.isDead(target); stacked++) {
            // --no-canonicalize: resolving the path would stat the dead mount and fail with "not mounted"
            SystemCommand.run("umount", "-l", "--no-canonicalize", target.toAbsolutePath().normalize().toString());
        }
        if (MountTable.isDead(target)) {
            throw new IOException(target + " is a dead mount that `umount -l` did not clear; unmount it by hand");
        }
        if (MountTable.at(target).filter(ImageMount::isStarlingOverlay).isPresent()) {
            throw new IOException(target + " is already served by a running `starling mount`; "
                    + "run `starling umount " + target + "` first");
        }
        for (Path cleared : MountTable.clearDeadLayerMounts()) {
            LOG.info("cleared the dead layer mount " + cleared + " a killed daemon left");
        }
    }

    private void overlay(Path workDir, MountOptions mountOptions) throws IOException {
        Files.createDirectories(target);
        // overlayfs without an upper dir needs two lower dirs: an empty one at the bottom serves single-layer images.
        Path empty = Files.createDirectories(workDir.resolve("empty"));
        StringBuilder lower = new StringBuilder();
        for (int i = layers.size() - 1; i >= 0; i--) {
            lower.append(layers.get(i).mountPoint()).append(':');
        }
        lower.append(empty);
        SystemCommand.run("mount", "-t", "overlay", OVERLAY_SOURCE, "-o",
                "ro," + mountOptions.securityFlags() + ",lowerdir=" + lower, target.toString());
        overlaid = true;
    }

    public int layerCount() {
        return layers.size();
    }

    /** Range requests made to the registry so far, all layers. */
    public long requests() {
        return remotes.stream().mapToLong(RegistryRangeReader::requests).sum();
    }

    /** Compressed bytes fetched from the registry so far, all layers, footers and TOCs included. */
    public long bytesFetched() {
        return remotes.stream().mapToLong(RegistryRangeReader::bytesRead).sum();
    }

    /** The layers' read paths, bottom first: their progress and state. */
    public List<LayerReader> layerReaders() {
        return readers;
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

    @Override
    public void close() throws IOException {
        IOException failure = null;
        scheduler.close();
        if (overlaid && mounted()) {
            try {
                SystemCommand.run("umount", "-l", target.toString());
            } catch (IOException e) {
                failure = e;
            }
        }
        for (LayerMount m : layers) {
            try {
                m.close();
            } catch (IOException e) {
                failure = failure == null ? e : failure;
            }
        }
        for (LayerReader r : readers) {
            r.close();
        }
        if (failure != null) {
            throw failure;
        }
    }
}
