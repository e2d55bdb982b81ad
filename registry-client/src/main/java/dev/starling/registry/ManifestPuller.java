package dev.starling.registry;

import java.io.IOException;
import java.util.List;
import okhttp3.Request;
import okhttp3.Response;

/** GET /v2/&lt;repo&gt;/manifests/&lt;tag|digest&gt;, with every manifest type we parse in Accept. */
final class ManifestPuller {
    /** Manifests are small; a larger body is refused rather than buffered. */
    static final int MAX_MANIFEST_BYTES = 4 << 20;

    private final RegistryTransport transport;

    ManifestPuller(RegistryTransport transport) {
        this.transport = transport;
    }

    Manifest pull(ImageReference ref) throws IOException {
        Request request = new Request.Builder().url(transport.url(ref, "manifests/" + ref.manifestReference()))
                .header("Accept", String.join(", ", MediaTypes.MANIFESTS)).get().build();
        try (Response r = transport.execute(ref, "pull", List.of(), request)) {
            if (r.code() == 404) {
                throw new NotFoundException("manifest " + ref + " not found");
            }
            if (!r.isSuccessful()) {
                throw RegistryTransport.failure("GET manifest " + ref, r);
            }
            byte[] raw = r.body().byteStream().readNBytes(MAX_MANIFEST_BYTES + 1);
            if (raw.length > MAX_MANIFEST_BYTES) {
                throw new InvalidManifestException("manifest " + ref + " is larger than " + MAX_MANIFEST_BYTES + " bytes");
            }
            Manifest m = Manifest.parse(raw, r.header("Content-Type"));
            if (ref.digest() != null && !ref.digest().equals(m.digest())) {
                throw new ContentMismatchException("manifest " + ref + " has digest " + m.digest()
                        + ": the registry served other bytes than the reference pins");
            }
            return m;
        }
    }
}
