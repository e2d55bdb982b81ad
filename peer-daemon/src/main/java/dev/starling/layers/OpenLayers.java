package dev.starling.layers;

import dev.starling.estargz.ChunkDecoder;
import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.InvalidBlobException;
import dev.starling.fetch.ChunkStore;
import dev.starling.fetch.LayerReader;
import dev.starling.fetch.Origin;
import dev.starling.fetch.RegistryOrigin;
import dev.starling.fetch.RegistryRangeReader;
import dev.starling.fetch.VerifiedBlob;
import dev.starling.registry.Digest;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * The node's open layers: one per blob digest however many images, mounts or front ends use it,
 * each opened once (footer and TOC fetched, TOC verified against the manifest), reference-counted,
 * and closed when its last user lets go. All read through the node's one {@link ChunkStore}.
 */
public final class OpenLayers implements AutoCloseable {
    private final ChunkStore store;
    private final OriginFactory origins;
    /** Where opened layers' footers and TOCs are kept so they open again without the registry; null: nowhere. */
    private final TocCache tocs;
    private final Map<Digest, Entry> open = new HashMap<>();

    /** Where an open layer's missing chunks come from: the registry alone, or peers before it. */
    @FunctionalInterface
    public interface OriginFactory {
        Origin create(LayerRef layer, EStargzBlob blob, Origin registry);

        OriginFactory REGISTRY_ONLY = (layer, blob, registry) -> registry;
    }

    /** An open layer: its TOC and read path, and the blob reader that fetched them. */
    public record Layer(Digest digest, EStargzBlob blob, LayerReader reader, RegistryRangeReader remote) {
    }

    private static final class Entry {
        final CompletableFuture<Layer> layer = new CompletableFuture<>();
        int users;
    }

    public OpenLayers(ChunkStore store) {
        this(store, OriginFactory.REGISTRY_ONLY);
    }

    public OpenLayers(ChunkStore store, OriginFactory origins) {
        this(store, origins, null);
    }

    /** Open layers that keep each layer's footer and TOC in {@code tocs}, so a restart opens them without the registry. */
    public OpenLayers(ChunkStore store, OriginFactory origins, TocCache tocs) {
        this.store = store;
        this.origins = origins;
        this.tocs = tocs;
    }

    public ChunkStore store() {
        return store;
    }

    /**
     * The layer {@code ref} names, opened now or shared with whoever opened it first; release it
     * with {@link #release}. Concurrent first users wait for one open.
     */
    public Layer acquire(RegistryClient client, LayerRef ref) throws IOException {
        Entry entry;
        boolean opener = false;
        synchronized (this) {
            entry = open.get(ref.digest());
            if (entry == null) {
                entry = new Entry();
                open.put(ref.digest(), entry);
                opener = true;
            }
            entry.users++;
        }
        if (opener) {
            try {
                entry.layer.complete(openLayer(client, ref));
            } catch (IOException | RuntimeException e) {
                entry.layer.completeExceptionally(e);
            }
        }
        try {
            return entry.layer.join();
        } catch (CompletionException e) {
            synchronized (this) {
                if (--entry.users == 0) {
                    open.remove(ref.digest(), entry);
                }
            }
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }

    private Layer openLayer(RegistryClient client, LayerRef ref) throws IOException {
        String digest = ref.digest().toString();
        TocCache.Entry kept = tocs == null ? null : tocs.get(ref.digest());
        if (kept != null) {
            RegistryRangeReader remote = new RegistryRangeReader(client, ref.repository(), digest, kept.blobSize());
            try {
                return started(ref, remote, EStargzBlob.open(kept.over(remote), ref.tocDigest()));
            } catch (InvalidBlobException e) { // what was kept does not verify: fetch it again
                java.util.logging.Logger.getLogger(OpenLayers.class.getName()).warning("the kept TOC of " + digest
                        + " does not verify (" + e.getMessage() + "); fetching it again");
                tocs.drop(ref.digest());
            }
        }
        long size = ref.descriptor().size();
        RegistryRangeReader remote = size > 0 // the manifest's size spares a HEAD; the blob's digest binds its bytes either way
                ? new RegistryRangeReader(client, ref.repository(), digest, size)
                : new RegistryRangeReader(client, ref.repository(), digest);
        TocCache.Recording recording = new TocCache.Recording(remote);
        EStargzBlob blob = EStargzBlob.open(recording, ref.tocDigest());
        if (tocs != null) {
            tocs.put(ref.digest(), remote.size(), recording.reads());
        }
        return started(ref, remote, blob);
    }

    private Layer started(LayerRef ref, RegistryRangeReader remote, EStargzBlob blob) throws IOException {
        RegistryOrigin registry = new RegistryOrigin(remote, new ChunkDecoder(blob.footer().format()), store);
        LayerReader reader = new LayerReader(ref.digest(), blob, remote.size(), origins.create(ref, blob, registry), store);
        reader.startFetching();
        return new Layer(ref.digest(), blob, reader, remote);
    }

    /**
     * A blob's TOC, read without opening the layer (no reader, no background fetch): the footer and
     * TOC kept on disk (verified against a manifest when kept), else the registry's when
     * {@code registryAllowed}. Its digest is the blob's own; what a node compares with the digest a
     * peer names before serving it anything of the blob.
     */
    public VerifiedBlob verifiedToc(RegistryClient client, dev.starling.registry.ImageReference repository, Digest blob,
                                    boolean registryAllowed) throws IOException {
        TocCache.Entry kept = tocs == null ? null : tocs.get(blob);
        if (kept != null) {
            dev.starling.estargz.RangeReader remote = registryAllowed
                    ? new RegistryRangeReader(client, repository, blob.toString(), kept.blobSize()) : noRegistry(kept.blobSize(), repository);
            try {
                return new VerifiedBlob(EStargzBlob.open(kept.over(remote), null), remote);
            } catch (InvalidBlobException e) {
                // damaged: the registry may say
            }
        }
        if (!registryAllowed) {
            throw new IOException("its TOC is not kept here, and " + repository.registry() + " is not a registry this node fetches from for peers");
        }
        RegistryRangeReader remote = new RegistryRangeReader(client, repository, blob.toString());
        return new VerifiedBlob(EStargzBlob.open(remote, null), remote);
    }

    /** A blob this node may not fetch: its size is known, its bytes are not to be read. */
    private static dev.starling.estargz.RangeReader noRegistry(long size, dev.starling.registry.ImageReference repository) {
        return new dev.starling.estargz.RangeReader() {
            @Override
            public long size() {
                return size;
            }

            @Override
            public byte[] read(long offset, int length) throws IOException {
                throw new IOException(repository.registry() + " is not a registry this node fetches from for peers");
            }
        };
    }

    /** The TOC and bytes of {@code blob} when it is open here, or null. */
    public synchronized VerifiedBlob openBlob(Digest blob) {
        Entry e = open.get(blob);
        if (e == null || !e.layer.isDone() || e.layer.isCompletedExceptionally()) {
            return null;
        }
        Layer layer = e.layer.join();
        return new VerifiedBlob(layer.blob(), layer.remote());
    }

    /** Lets go of a layer; the last user's release closes it. */
    public void release(Layer layer) throws IOException {
        synchronized (this) {
            Entry entry = open.get(layer.digest());
            if (entry == null || --entry.users > 0) {
                return;
            }
            open.remove(layer.digest());
        }
        layer.reader().close();
    }

    /** The layers open now. */
    public synchronized List<Layer> layers() {
        List<Layer> out = new ArrayList<>();
        for (Entry e : open.values()) {
            if (e.layer.isDone() && !e.layer.isCompletedExceptionally()) {
                out.add(e.layer.join());
            }
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        for (Layer layer : layers()) {
            layer.reader().close();
        }
        synchronized (this) {
            open.clear();
        }
    }
}
