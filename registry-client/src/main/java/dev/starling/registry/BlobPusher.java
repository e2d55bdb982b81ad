package dev.starling.registry;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSink;

/**
 * Blob upload: skip what the registry has, mount across repositories when it can, otherwise one
 * monolithic PUT (small blobs) or PATCH chunks then a closing PUT (large ones).
 */
public final class BlobPusher {
    private static final MediaType OCTETS = MediaType.get("application/octet-stream");

    /** How a blob reached the registry. */
    public enum Outcome { ALREADY_THERE, MOUNTED, UPLOADED }

    private final RegistryTransport transport;
    private final long chunkSize;

    BlobPusher(RegistryTransport transport, long chunkSize) {
        this.transport = transport;
        this.chunkSize = chunkSize;
    }

    boolean exists(ImageReference repo, String digest) throws IOException {
        Request head = new Request.Builder().url(transport.url(repo, "blobs/" + digest)).head().build();
        try (Response r = transport.execute(repo, "pull", List.of(), head)) {
            if (r.code() == 200) {
                return true;
            }
            if (r.code() == 404) {
                return false;
            }
            throw RegistryTransport.failure("HEAD blob " + digest, r);
        }
    }

    Outcome push(ImageReference repo, String digest, Path file, ImageReference mountFrom) throws IOException {
        if (exists(repo, digest)) {
            return Outcome.ALREADY_THERE;
        }
        boolean canMount = mountFrom != null && mountFrom.sameRegistry(repo)
                && !mountFrom.repository().equals(repo.repository());
        HttpUrl.Builder start = transport.url(repo, "blobs/uploads/").newBuilder();
        List<String> extraScopes = List.of();
        if (canMount) {
            start.addQueryParameter("mount", digest).addQueryParameter("from", mountFrom.repository());
            extraScopes = List.of("repository:" + mountFrom.repository() + ":pull");
        }
        HttpUrl location;
        Request post = new Request.Builder().url(start.build()).post(RequestBody.create(new byte[0], null)).build();
        try (Response r = transport.execute(repo, "pull,push", extraScopes, post)) {
            if (r.code() == 201 && canMount) {
                return Outcome.MOUNTED;
            }
            if (r.code() != 202 || r.header("Location") == null) {
                throw RegistryTransport.failure("starting the upload of blob " + digest + " to " + repo, r);
            }
            location = r.request().url().resolve(r.header("Location"));
        }
        long size = Files.size(file);
        if (size > chunkSize) {
            location = patchChunks(repo, digest, file, size, location);
            finish(repo, digest, location, RequestBody.create(new byte[0], OCTETS));
        } else {
            finish(repo, digest, location, fileRange(file, 0, size));
        }
        return Outcome.UPLOADED;
    }

    private HttpUrl patchChunks(ImageReference repo, String digest, Path file, long size, HttpUrl location)
            throws IOException {
        for (long offset = 0; offset < size; offset += chunkSize) {
            long length = Math.min(chunkSize, size - offset);
            Request patch = new Request.Builder().url(location)
                    .header("Content-Range", offset + "-" + (offset + length - 1))
                    .patch(fileRange(file, offset, length)).build();
            try (Response r = transport.execute(repo, "pull,push", List.of(), patch)) {
                if (r.code() != 202 || r.header("Location") == null) {
                    throw RegistryTransport.failure("uploading bytes " + offset + "+" + length + " of blob " + digest, r);
                }
                location = r.request().url().resolve(r.header("Location"));
            }
        }
        return location;
    }

    private void finish(ImageReference repo, String digest, HttpUrl location, RequestBody body) throws IOException {
        Request put = new Request.Builder().url(location.newBuilder().addQueryParameter("digest", digest).build())
                .put(body).build();
        try (Response r = transport.execute(repo, "pull,push", List.of(), put)) {
            if (r.code() != 201) {
                throw RegistryTransport.failure("completing the upload of blob " + digest, r);
            }
        }
    }

    /** A replayable body of a file range, so a retried request sends the same bytes again. */
    private static RequestBody fileRange(Path file, long offset, long length) {
        return new RequestBody() {
            @Override
            public MediaType contentType() {
                return OCTETS;
            }

            @Override
            public long contentLength() {
                return length;
            }

            @Override
            public void writeTo(BufferedSink sink) throws IOException {
                try (InputStream in = Files.newInputStream(file)) {
                    in.skipNBytes(offset);
                    byte[] buffer = new byte[1 << 16];
                    long left = length;
                    while (left > 0) {
                        int n = in.read(buffer, 0, (int) Math.min(buffer.length, left));
                        if (n < 0) {
                            throw new IOException(file + " shrank during upload");
                        }
                        sink.write(buffer, 0, n);
                        left -= n;
                    }
                }
            }
        };
    }
}
