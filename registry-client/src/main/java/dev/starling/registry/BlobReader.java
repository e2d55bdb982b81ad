package dev.starling.registry;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.MultipartReader;
import okhttp3.Request;
import okhttp3.Response;

/** Blob size and reads: HEAD, single Range GETs checked against Content-Range, verified full fetches. */
final class BlobReader {
    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");

    private final RegistryTransport transport;
    private final Map<String, CompletableFuture<List<byte[]>>> inFlight = new ConcurrentHashMap<>();
    /** Where the registry redirected each blob (pre-signed storage URLs), reused until it fails. */
    private final Map<String, HttpUrl> locations = new ConcurrentHashMap<>();
    /** Hosts that refused a multi-range request. */
    private final Set<String> singleRangeHosts = ConcurrentHashMap.newKeySet();

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
                throw new NotFoundException("blob " + digest + " not found in " + repo.registry() + "/"
                        + repo.repository());
            }
        }
        Request probe = new Request.Builder().url(transport.url(repo, "blobs/" + digest))
                .header("Range", "bytes=0-1").header("Accept-Encoding", "identity").get().build();
        try (Response r = transport.execute(repo, "pull", List.of(), probe)) {
            if (r.code() == 206) {
                Matcher m = contentRange(r.header("Content-Range"), digest);
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
        if (length == 0) {
            return new byte[0];
        }
        return readRanges(repo, digest, List.of(new ByteRange(offset, length))).getFirst();
    }

    /**
     * Reads several ranges of one blob with one request where the server allows it (multipart
     * byteranges), else with one superset range. Identical concurrent calls share one request.
     */
    List<byte[]> readRanges(ImageReference repo, String digest, List<ByteRange> wanted) throws IOException {
        String key = blobKey(repo, digest) + " " + wanted;
        CompletableFuture<List<byte[]>> mine = new CompletableFuture<>();
        CompletableFuture<List<byte[]>> running = inFlight.putIfAbsent(key, mine);
        if (running != null) {
            try {
                return running.join();
            } catch (CompletionException e) {
                throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
            }
        }
        try {
            List<byte[]> result = fetchRanges(repo, digest, wanted);
            mine.complete(result);
            return result;
        } catch (IOException | RuntimeException e) {
            mine.completeExceptionally(e);
            throw e;
        } finally {
            inFlight.remove(key);
        }
    }

    private List<byte[]> fetchRanges(ImageReference repo, String digest, List<ByteRange> wanted) throws IOException {
        List<ByteRange> merged = merge(wanted);
        String host = repo.apiHost();
        boolean multi = merged.size() > 1 && !singleRangeHosts.contains(host);
        List<ByteRange> asked = multi || merged.size() == 1 ? merged
                : List.of(new ByteRange(merged.getFirst().offset(),
                        Math.toIntExact(merged.getLast().end() - merged.getFirst().offset())));
        String header = "bytes=" + String.join(",", asked.stream().map(ByteRange::http).toList());
        BlobData data;
        try {
            data = rangeRequest(repo, digest, header, asked);
        } catch (RegistryException e) {
            if (multi && e.status() == 400 || multi && e.status() == 416) {
                singleRangeHosts.add(host); // GCS answers 400 to multi-range: ask for the superset from now on
                return fetchRanges(repo, digest, wanted);
            }
            throw e;
        }
        List<byte[]> out = new ArrayList<>(wanted.size());
        for (ByteRange r : wanted) {
            out.add(data.slice(r, digest));
        }
        return out;
    }

    /** Pieces of the blob a response delivered, by offset. */
    private static final class BlobData {
        final TreeMap<Long, byte[]> pieces = new TreeMap<>();

        byte[] slice(ByteRange r, String digest) throws RegistryException {
            var floor = pieces.floorEntry(r.offset());
            if (floor == null || floor.getKey() + floor.getValue().length < r.end()) {
                throw new RangeMismatchException("blob " + digest + ": the response did not cover bytes " + r.http());
            }
            int from = (int) (r.offset() - floor.getKey());
            if (from == 0 && floor.getValue().length == r.length()) {
                return floor.getValue(); // what was asked for is what came: no copy (callers only read it)
            }
            return Arrays.copyOfRange(floor.getValue(), from, from + r.length());
        }
    }

    private BlobData rangeRequest(ImageReference repo, String digest, String rangeHeader, List<ByteRange> asked)
            throws IOException {
        String blob = blobKey(repo, digest);
        for (int attempt = 0; ; attempt++) {
            HttpUrl location = locations.get(blob);
            Request.Builder b = new Request.Builder().header("Range", rangeHeader).header("Accept-Encoding", "identity");
            Response r;
            if (location != null) {
                try {
                    r = transport.http.newCall(b.url(location).get().build()).execute();
                } catch (IOException e) {
                    // The pinned host is gone: forget it and go through mirrors and registry again, once.
                    locations.remove(blob);
                    if (attempt > 0) {
                        throw e;
                    }
                    continue;
                }
            } else {
                r = transport.execute(repo, "pull", List.of(), b.url(transport.url(repo, "blobs/" + digest)).get().build());
            }
            try (r) {
                if (location == null && r.priorResponse() == null && !r.request().url().equals(transport.url(repo, "blobs/" + digest))) {
                    locations.put(blob, r.request().url());
                }
                if (!r.isSuccessful() && location != null && attempt == 0) {
                    // Pre-signed storage URLs expire (403, or 400 from some stores) and storage hosts
                    // fail (5xx) while the registry is fine: any failure of a pinned location goes
                    // back to the registry for a fresh one, once.
                    locations.remove(blob);
                    continue;
                }
                return readBody(r, digest, asked);
            }
        }
    }

    private static BlobData readBody(Response r, String digest, List<ByteRange> asked) throws IOException {
        BlobData data = new BlobData();
        MediaType type = r.body().contentType();
        if (r.code() == 206 && type != null && type.type().equals("multipart")) {
            try (MultipartReader parts = new MultipartReader(r.body())) {
                for (MultipartReader.Part next; (next = parts.nextPart()) != null; ) {
                    try (MultipartReader.Part part = next) {
                        Matcher m = contentRange(part.headers().get("Content-Range"), digest);
                        long start = Long.parseLong(m.group(1));
                        long length = Long.parseLong(m.group(2)) - start + 1;
                        if (asked.stream().noneMatch(a -> start >= a.offset() && start + length <= a.end())) {
                            throw new RangeMismatchException("asked for bytes " + asked.stream().map(ByteRange::http).toList()
                                    + " of blob " + digest + " but the registry sent a part of " + m.group(0));
                        }
                        data.pieces.put(start, readExactly(part.body().inputStream(), length, digest, start));
                    }
                }
            }
            return data;
        }
        if (r.code() == 206) {
            Matcher m = contentRange(r.header("Content-Range"), digest);
            long start = Long.parseLong(m.group(1));
            long length = Long.parseLong(m.group(2)) - start + 1;
            ByteRange first = asked.getFirst();
            if (asked.size() == 1 && (start != first.offset() || length != first.length())) {
                throw new RangeMismatchException("asked for bytes " + first.http() + " of blob " + digest
                        + " but the registry sent " + m.group(0));
            }
            data.pieces.put(start, readExactly(r.body().byteStream(), length, digest, start));
            return data;
        }
        if (r.code() == 200) { // no Range support: the whole blob, keep what was asked for
            InputStream in = r.body().byteStream();
            long pos = 0;
            for (ByteRange want : merge(asked)) {
                in.skipNBytes(want.offset() - pos);
                data.pieces.put(want.offset(), readExactly(in, want.length(), digest, want.offset()));
                pos = want.end();
            }
            return data;
        }
        throw RegistryTransport.failure("GET bytes " + asked.stream().map(ByteRange::http).toList() + " of blob " + digest, r);
    }

    private static byte[] readExactly(InputStream in, long length, String digest, long offset) throws IOException {
        if (length > Integer.MAX_VALUE) {
            throw new RangeMismatchException("blob " + digest + ": a range of " + length + " bytes is too large");
        }
        byte[] out = new byte[(int) length]; // one copy; readNBytes(int) gathers 16 KiB pieces and copies again
        int n = in.readNBytes(out, 0, out.length);
        if (n != length) {
            throw new EOFException("blob " + digest + ": the connection ended after " + n + " of "
                    + length + " bytes at offset " + offset);
        }
        return out;
    }

    private static String blobKey(ImageReference repo, String digest) {
        return repo.apiHost() + "/" + repo.repository() + "@" + digest;
    }

    /** Sorted, with overlapping and touching ranges joined. */
    static List<ByteRange> merge(List<ByteRange> ranges) {
        List<ByteRange> sorted = new ArrayList<>(ranges);
        Collections.sort(sorted);
        List<ByteRange> out = new ArrayList<>();
        for (ByteRange r : sorted) {
            if (!out.isEmpty() && out.getLast().end() >= r.offset()) {
                ByteRange last = out.removeLast();
                long end = Math.max(last.end(), r.end());
                out.add(new ByteRange(last.offset(), Math.toIntExact(end - last.offset())));
            } else {
                out.add(r);
            }
        }
        return out;
    }

    void fetch(ImageReference repo, String digest, OutputStream out) throws IOException {
        Request request = new Request.Builder().url(transport.url(repo, "blobs/" + digest))
                .header("Accept-Encoding", "identity").get().build();
        try (Response r = transport.execute(repo, "pull", List.of(), request)) {
            if (!r.isSuccessful()) {
                throw RegistryTransport.failure("GET blob " + digest, r);
            }
            MessageDigest sha = Manifest.newSha256();
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
            String actual = Manifest.digestString(sha.digest());
            if (!actual.equals(digest)) {
                throw new ContentMismatchException("blob " + digest + " from " + repo.registry() + " hashes to " + actual
                        + ": the registry served wrong bytes");
            }
        }
    }

    private static Matcher contentRange(String header, String digest) throws RegistryException {
        Matcher m = header == null ? null : CONTENT_RANGE.matcher(header.strip());
        if (m == null || !m.matches()) {
            throw new RangeMismatchException("blob " + digest + ": 206 response with Content-Range " + header);
        }
        return m;
    }
}
