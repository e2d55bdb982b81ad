package dev.starling.fetch;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.starling.registry.Digest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Instant;

/**
 * One open layer as its state file shows it: the reference snapshotter's fields ({@code digest},
 * {@code size}, {@code fetchedSize}, {@code fetchedPercent}, {@code error}) and ours.
 * {@code fetchedPercent} is the share of the layer's file bytes this node holds: 100 means the
 * registry is no longer needed.
 *
 * @param fetchedSize compressed bytes of the members this node holds chunks of: the reference's {@code fetchedSize}
 */
public record LayerState(Digest digest, long size, long fetchedSize, long localBytes, long totalBytes, String error,
                         Instant errorAt, ReadCounters counters, String prefetch, String backgroundFetch) {
    private static final JsonFactory JSON = new JsonFactory();

    public byte[] json() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(512);
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.writeStartObject();
            if (error != null) {
                g.writeStringField("error", error);
                g.writeStringField("errorTime", errorAt.toString());
            }
            g.writeStringField("digest", digest.toString());
            g.writeNumberField("size", size);
            g.writeNumberField("fetchedSize", Math.min(size, fetchedSize));
            g.writeNumberField("fetchedPercent", totalBytes == 0 ? 100.0 : Math.floor(localBytes * 10000.0 / totalBytes) / 100);
            g.writeNumberField("localBytes", localBytes);
            g.writeNumberField("totalBytes", totalBytes);
            g.writeObjectFieldStart("bytesServed");
            g.writeNumberField("memory", counters.servedFromMemory());
            g.writeNumberField("disk", counters.servedFromDisk());
            g.writeNumberField("registry", counters.servedFromNetwork());
            g.writeEndObject();
            g.writeNumberField("fetchRequests", counters.fetchRequests());
            g.writeNumberField("fetchedBytes", counters.fetchedBytes());
            g.writeNumberField("peerBytes", counters.peerBytes());
            g.writeNumberField("failures", counters.failures());
            g.writeStringField("prefetch", prefetch);
            g.writeStringField("backgroundFetch", backgroundFetch);
            g.writeEndObject();
        } catch (IOException e) {
            throw new IllegalStateException(e); // in-memory output cannot fail
        }
        out.write('\n');
        return out.toByteArray();
    }
}
