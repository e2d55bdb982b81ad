package dev.starling.fetch;

import dev.starling.estargz.RangeReader;
import dev.starling.registry.ImageReference;
import dev.starling.registry.RegistryClient;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;

/** A blob in a registry as a {@link RangeReader}: each read is one HTTP Range request. */
public final class RegistryRangeReader implements RangeReader {
    private final RegistryClient client;
    private final ImageReference repo;
    private final String digest;
    private final long size;
    private final AtomicLong bytesRead = new AtomicLong();
    private final AtomicLong requests = new AtomicLong();

    /** {@code size} comes from the registry, not from a descriptor, which is not trusted. */
    public RegistryRangeReader(RegistryClient client, ImageReference repo, String digest) throws IOException {
        this(client, repo, digest, client.blobSize(repo, digest));
    }

    /**
     * A blob whose size this node learned from the registry before (kept beside its TOC): no
     * request is made until a read, so a layer can open while the registry is down.
     */
    public RegistryRangeReader(RegistryClient client, ImageReference repo, String digest, long size) {
        this.client = client;
        this.repo = repo;
        this.digest = digest;
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public byte[] read(long offset, int length) throws IOException {
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new java.io.EOFException("range [" + offset + ", +" + length + ") is outside blob " + digest
                    + " (" + size + " bytes)");
        }
        byte[] data = client.readBlob(repo, digest, offset, length);
        requests.incrementAndGet(); // counted once served: failed attempts fetched nothing
        bytesRead.addAndGet(data.length);
        return data;
    }

    /** Bytes fetched so far. */
    public long bytesRead() {
        return bytesRead.get();
    }

    /** Range requests made so far. */
    public long requests() {
        return requests.get();
    }
}
