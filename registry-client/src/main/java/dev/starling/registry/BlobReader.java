package dev.starling.registry;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import okhttp3.Request;
import okhttp3.Response;

/** Blob size and reads: HEAD, single Range GETs checked against Content-Range, verified full fetches. */
final class BlobReader {
    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");

    private final RegistryTransport transport;

    BlobReader(RegistryTransport transport) {
        this.transport = transport;
    }

    long size(ImageReference repo, String digest) throws IOException {
        Request head = new Request.Builder().url(transport.url(repo, "blobs/" + digest)).head().build();
        try (Response r = transport.execute(repo, "pull", List.of(), head)) {
            if (r.code() == 200 && r.header("Content-Length") != null) {
                return Long.parseLong(r.header("Content-Length"));
            }
            if (r.code() == 404) {
                throw new RegistryException("blob " + digest + " not found in " + repo.registry() + "/"
                        + repo.repository(), 404);
            }
        }
        Request probe = new Request.Builder().url(transport.url(repo, "blobs/" + digest))
                .header("Range", "bytes=0-1").header("Accept-Encoding", "identity").get().build();
        try (Response r = transport.execute(repo, "pull", List.of(), probe)) {
            if (r.code() == 206) {
                Matcher m = contentRange(r, digest);
                if (!m.group(3).equals("*")) {
                    return Long.parseLong(m.group(3));
                }
            }
            if (r.code() == 200 && r.body().contentLength() >= 0) {
                return r.body().contentLength();
            }
            throw RegistryTransport.failure("size of blob " + digest, r);
        }
    }

    byte[] read(ImageReference repo, String digest, long offset, int length) throws IOException {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("negative range " + offset + "+" + length);
        }
        if (length == 0) {
            return new byte[0];
        }
        long last = offset + length - 1;
        Request request = new Request.Builder().url(transport.url(repo, "blobs/" + digest))
                .header("Range", "bytes=" + offset + "-" + last).header("Accept-Encoding", "identity").get().build();
        try (Response r = transport.execute(repo, "pull", List.of(), request)) {
            InputStream body = r.body().byteStream();
            if (r.code() == 206) {
                Matcher m = contentRange(r, digest);
                if (Long.parseLong(m.group(1)) != offset || Long.parseLong(m.group(2)) != last) {
                    throw new RegistryException("asked for bytes " + offset + "-" + last + " of blob " + digest
                            + " but the registry sent " + m.group(0), 206);
                }
            } else if (r.code() == 200) {
                body.skipNBytes(offset); // a server without Range support sends it all
            } else {
                throw RegistryTransport.failure("GET bytes " + offset + "-" + last + " of blob " + digest, r);
            }
            byte[] out = body.readNBytes(length);
            if (out.length != length) {
                throw new EOFException("blob " + digest + ": the connection ended after " + out.length + " of "
                        + length + " bytes at offset " + offset);
            }
            return out;
        }
    }

    void fetch(ImageReference repo, String digest, OutputStream out) throws IOException {
        Request request = new Request.Builder().url(transport.url(repo, "blobs/" + digest))
                .header("Accept-Encoding", "identity").get().build();
        try (Response r = transport.execute(repo, "pull", List.of(), request)) {
            if (!r.isSuccessful()) {
                throw RegistryTransport.failure("GET blob " + digest, r);
            }
            MessageDigest sha = sha256();
            long n = 0;
            byte[] buffer = new byte[1 << 16];
            try (InputStream in = r.body().byteStream()) {
                for (int k; (k = in.read(buffer)) > 0; n += k) {
                    sha.update(buffer, 0, k);
                    out.write(buffer, 0, k);
                }
            }
            long expected = r.body().contentLength();
            if (expected >= 0 && n != expected) {
                throw new EOFException("blob " + digest + ": the connection ended after " + n + " of " + expected + " bytes");
            }
            String actual = "sha256:" + java.util.HexFormat.of().formatHex(sha.digest());
            if (!actual.equals(digest)) {
                throw new RegistryException("blob " + digest + " from " + repo.registry() + " hashes to " + actual
                        + ": the registry served wrong bytes", r.code());
            }
        }
    }

    private static Matcher contentRange(Response r, String digest) throws RegistryException {
        String header = r.header("Content-Range");
        Matcher m = header == null ? null : CONTENT_RANGE.matcher(header.strip());
        if (m == null || !m.matches()) {
            throw new RegistryException("blob " + digest + ": 206 response with Content-Range " + header, 206);
        }
        return m;
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
