package dev.starling.registry;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;

/**
 * The OCI distribution API. One instance per process is enough: it pools connections and caches
 * tokens. Each operation lives in its own small class; this facade only wires them.
 */
public final class RegistryClient implements AutoCloseable {
    private final Settings settings;
    private final RegistryTransport transport;
    private final ManifestPuller manifests;
    private final BlobReader blobs;
    private final BlobPusher pusher;

    /**
     * @param credentials    who we are, per registry
     * @param insecureHosts  {@code host} or {@code host:port} reached over plain http (loopback always is)
     * @param requestTimeout how long one HTTP request may go without a byte (30 s: the reference's request
     *                       timeout); a body that keeps flowing is waited for, up to the deadline
     * @param deadline       one operation, retries included (300 s: the reference's fetch timeout)
     * @param maxRetries     retries after the first attempt (5, as the reference)
     * @param minBackoff     first retry delay before jitter (30 ms, as the reference)
     * @param maxBackoff     cap on one delay (10 s: the reference's 300 s outlives any start-up)
     * @param uploadChunk    blobs larger than this are pushed in PATCH chunks of this size (64 MiB)
     * @param mirrors        per registry (as written in references, e.g. {@code docker.io}), hosts tried
     *                       in order before it for reads
     */
    public record Settings(CredentialProvider credentials, Set<String> insecureHosts, Duration requestTimeout,
                           Duration deadline, int maxRetries, Duration minBackoff, Duration maxBackoff,
                           long uploadChunk, java.util.Map<String, java.util.List<Mirror>> mirrors) {
        public static Settings defaults() {
            return new Settings(CredentialProvider.ANONYMOUS, Set.of(), Duration.ofSeconds(30), Duration.ofSeconds(300),
                    5, Duration.ofMillis(30), Duration.ofSeconds(10), 64L << 20, java.util.Map.of());
        }

        public Settings withMirrors(java.util.Map<String, java.util.List<Mirror>> m) {
            return new Settings(credentials, insecureHosts, requestTimeout, deadline, maxRetries, minBackoff, maxBackoff,
                    uploadChunk, java.util.Map.copyOf(m));
        }

        public Settings withCredentials(CredentialProvider c) {
            return new Settings(c, insecureHosts, requestTimeout, deadline, maxRetries, minBackoff, maxBackoff, uploadChunk, mirrors);
        }

        public Settings withInsecureHosts(Set<String> hosts) {
            return new Settings(credentials, Set.copyOf(hosts), requestTimeout, deadline, maxRetries, minBackoff,
                    maxBackoff, uploadChunk, mirrors);
        }

        public Settings withTimeouts(Duration request, Duration overall) {
            return new Settings(credentials, insecureHosts, request, overall, maxRetries, minBackoff, maxBackoff,
                    uploadChunk, mirrors);
        }

        public Settings withRetries(int retries, Duration min, Duration max) {
            return new Settings(credentials, insecureHosts, requestTimeout, deadline, retries, min, max, uploadChunk,
                    mirrors);
        }

        public Settings withUploadChunk(long bytes) {
            return new Settings(credentials, insecureHosts, requestTimeout, deadline, maxRetries, minBackoff,
                    maxBackoff, bytes, mirrors);
        }
    }

    /** A host that serves a registry's content ({@code host[:port]}), over plain http when insecure. */
    public record Mirror(String host, boolean insecure) {
    }

    public RegistryClient(Settings settings) {
        this.settings = settings;
        this.transport = new RegistryTransport(settings);
        this.manifests = new ManifestPuller(transport);
        this.blobs = new BlobReader(transport);
        this.pusher = new BlobPusher(transport, settings.uploadChunk());
    }

    /** A client like this one (hosts, mirrors, timeouts) that sends no credentials: it sees what the registry gives anyone. */
    public RegistryClient withoutCredentials() {
        return new RegistryClient(settings.withCredentials(CredentialProvider.ANONYMOUS));
    }

    public static RegistryClient anonymous() {
        return new RegistryClient(Settings.defaults());
    }

    /** The manifest or index {@code ref} names, checked against its digest when the ref pins one. */
    public Manifest manifest(ImageReference ref) throws IOException {
        return manifests.pull(ref);
    }

    /** The blob's size, asked of the registry (a descriptor's size is not trusted). */
    public long blobSize(ImageReference repo, String digest) throws IOException {
        return blobs.size(repo, digest);
    }

    /** Exactly {@code length} bytes of a blob at {@code offset}, with one Range request. */
    public byte[] readBlob(ImageReference repo, String digest, long offset, int length) throws IOException {
        return blobs.read(repo, digest, offset, length);
    }

    /**
     * Several ranges of one blob, in the order asked, with one request where the registry allows
     * multipart byteranges (one superset range where it does not, as GCS).
     */
    public java.util.List<byte[]> readBlobRanges(ImageReference repo, String digest, java.util.List<ByteRange> ranges)
            throws IOException {
        return blobs.readRanges(repo, digest, ranges);
    }

    /** The whole blob into {@code out}, verified against its digest before returning. */
    public void fetchBlob(ImageReference repo, String digest, OutputStream out) throws IOException {
        blobs.fetch(repo, digest, out);
    }

    public boolean blobExists(ImageReference repo, String digest) throws IOException {
        return pusher.exists(repo, digest);
    }

    /**
     * Pushes a blob from a file unless the registry has it; tries a cross-repository mount from
     * {@code mountFrom} (same registry) first. Returns how it got there.
     */
    public BlobPusher.Outcome pushBlob(ImageReference repo, String digest, Path file, ImageReference mountFrom)
            throws IOException {
        return pusher.push(repo, digest, file, mountFrom);
    }

    /** Pushes a manifest under {@code ref}'s tag (or digest); returns its digest. */
    public String pushManifest(ImageReference ref, byte[] manifest, String mediaType) throws IOException {
        return new ManifestPusher(transport).push(ref, manifest, mediaType);
    }

    @Override
    public void close() {
        transport.http.dispatcher().executorService().shutdown();
        transport.http.connectionPool().evictAll();
    }
}
