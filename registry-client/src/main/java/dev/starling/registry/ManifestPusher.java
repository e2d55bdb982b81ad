package dev.starling.registry;

import java.io.IOException;
import java.util.List;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/** PUT /v2/&lt;repo&gt;/manifests/&lt;tag|digest&gt;. */
final class ManifestPusher {
    private final RegistryTransport transport;

    ManifestPusher(RegistryTransport transport) {
        this.transport = transport;
    }

    String push(ImageReference ref, byte[] manifest, String mediaType) throws IOException {
        Request put = new Request.Builder().url(transport.url(ref, "manifests/" + ref.manifestReference()))
                .put(RequestBody.create(manifest, MediaType.get(mediaType))).build();
        try (Response r = transport.execute(ref, "pull,push", List.of(), put)) {
            if (r.code() != 201) {
                throw RegistryTransport.failure("PUT manifest " + ref, r);
            }
        }
        return Manifest.sha256(manifest);
    }
}
