package dev.starling.daemon;

import com.sun.net.httpserver.HttpServer;
import dev.starling.fetch.LayerReader;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.FunctionTimer;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * The node's Prometheus endpoint ({@code GET /metrics}): bytes and read latency by source, registry
 * requests and bytes, bytes served to and filled for peers, failures, verification failures by
 * source, quarantines, members, tier sizes. The
 * meters read the node's counters when scraped; nothing is counted twice.
 */
final class DaemonMetrics implements AutoCloseable {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final HttpServer server;

    DaemonMetrics(Node node, InetSocketAddress listen) throws IOException {
        counter("starling_read_bytes", "bytes FUSE reads took, by the source that answered", node,
                d -> d.store.totals().servedFromMemory(), "source", "memory");
        counter("starling_read_bytes", "bytes FUSE reads took, by the source that answered", node,
                d -> d.store.totals().servedFromDisk(), "source", "disk");
        counter("starling_read_bytes", "bytes FUSE reads took, by the source that answered", node,
                d -> d.store.totals().servedFromNetwork(), "source", "network");
        counter("starling_fetched_bytes", "chunk bytes fetched for this node, by source", node,
                d -> d.store.totals().peerBytes(), "source", "peer");
        counter("starling_fetched_bytes", "chunk bytes fetched for this node, by source (registry: compressed)", node,
                d -> d.store.totals().fetchedBytes(), "source", "registry");
        counter("starling_registry_requests", "Range requests to the registry for this node's reads", node,
                d -> d.store.totals().fetchRequests());
        counter("starling_peer_served_bytes", "chunk bytes sent to peers", node, d -> d.peers.bytesServed());
        counter("starling_peer_fill_bytes", "compressed bytes fetched from the registry on peers' behalf", node,
                d -> d.provider.fillBytes());
        counter("starling_fetch_failures", "fetches or verifications that failed (the read got EIO or went on elsewhere)",
                node, d -> d.store.totals().failures());
        for (LayerReader.ReadSource source : LayerReader.ReadSource.values()) {
            String tag = source.name().toLowerCase(java.util.Locale.ROOT);
            FunctionTimer.builder("starling_read", node, d -> d.store.totals().readCount(source),
                            d -> d.store.totals().readNanos(source), TimeUnit.NANOSECONDS)
                    .description("chunk reads for FUSE and their time, by the tier that answered (network: peers or registry)")
                    .tags("source", tag).register(registry);
        }
        counter("starling_verification_failures", "chunks that did not match the TOC, by where they came from", node,
                d -> d.quarantine.count(), "source", "peer");
        counter("starling_verification_failures", "chunks that did not match the TOC, by where they came from", node,
                d -> d.store.totals().registryVerificationFailures(), "source", "registry");
        counter("starling_verification_failures", "chunks that did not match the TOC, by where they came from", node,
                d -> d.store.diskVerificationFailures(), "source", "disk");
        counter("starling_quarantines", "peers quarantined for sending bytes that do not match the TOC", node,
                d -> d.quarantine.count());
        counter("starling_refused_registry_requests", "peer requests naming a registry outside the allowlist", node,
                d -> d.provider.refused());
        counter("starling_peer_forbidden_requests", "peer requests for blobs the requester may not read here (--peer-access)",
                node, d -> d.provider.forbidden());
        counter("starling_peer_refused_connections", "peer connections closed: bad handshake, not the protocol, too slow, over the limits",
                node, d -> d.peers.refusedConnections());
        for (dev.starling.peer.PeerFallbacks.Reason reason : dev.starling.peer.PeerFallbacks.Reason.values()) {
            counter("starling_peer_fallbacks", "reads that went past a peer to the next source, by why", node,
                    d -> d.fallbacks.count(reason), "reason", reason.label());
        }
        counter("starling_swarm_served", "spans a busy owner's holders served this node instead of it", node,
                d -> d.fallbacks.servedByHolders());
        counter("starling_peer_busy_upload_slots", "peer requests told BUSY (with the span's holders) because every upload slot was taken",
                node, d -> d.peers.busyForSlots());
        Gauge.builder("starling_members", node, d -> d.membership.members().size()).description("live members, this node included")
                .register(registry);
        Gauge.builder("starling_open_layers", node, d -> d.layers.layers().size()).register(registry);
        Gauge.builder("starling_memory_tier_bytes", node, d -> d.store.memoryBytes()).register(registry);
        Gauge.builder("starling_disk_tier_bytes", node, d -> d.store.diskBytes()).register(registry);
        Gauge.builder("starling_process_resident_bytes", node, d -> ProcessMemory.residentBytes())
                .description("the daemon's resident set (VmRSS): what the node's memory accounting sees").register(registry);
        new JvmMemoryMetrics().bindTo(registry); // jvm_memory_used_bytes / _max_bytes by area and pool
        server = HttpServer.create(listen, 16);
        server.createContext("/metrics", exchange -> {
            byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
    }

    private void counter(String name, String help, Node node, ToDoubleFunction<Node> value, String... tags) {
        FunctionCounter.builder(name, node, value).description(help).tags(tags).register(registry);
    }

    InetSocketAddress address() {
        return server.getAddress();
    }

    @Override
    public void close() {
        server.stop(0);
        registry.close();
    }
}
