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
 * The daemon's Prometheus endpoint ({@code GET /metrics}): bytes and read latency by source, registry
 * requests and bytes, bytes served to and filled for peers, failures, verification failures by
 * source, quarantines, members, tier sizes. The
 * meters read the daemon's counters when scraped; nothing is counted twice.
 */
final class DaemonMetrics implements AutoCloseable {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final HttpServer server;

    DaemonMetrics(Daemon daemon, InetSocketAddress listen) throws IOException {
        counter("starling_read_bytes", "bytes FUSE reads took, by the source that answered", daemon,
                d -> d.totals().servedFromMemory(), "source", "memory");
        counter("starling_read_bytes", "bytes FUSE reads took, by the source that answered", daemon,
                d -> d.totals().servedFromDisk(), "source", "disk");
        counter("starling_read_bytes", "bytes FUSE reads took, by the source that answered", daemon,
                d -> d.totals().servedFromNetwork(), "source", "network");
        counter("starling_fetched_bytes", "chunk bytes fetched for this node, by source", daemon,
                d -> d.totals().peerBytes(), "source", "peer");
        counter("starling_fetched_bytes", "chunk bytes fetched for this node, by source (registry: compressed)", daemon,
                d -> d.totals().fetchedBytes(), "source", "registry");
        counter("starling_registry_requests", "Range requests to the registry for this node's reads", daemon,
                d -> d.totals().fetchRequests());
        counter("starling_peer_served_bytes", "chunk bytes sent to peers", daemon, d -> d.peerServedBytes());
        counter("starling_peer_fill_bytes", "compressed bytes fetched from the registry on peers' behalf", daemon,
                d -> d.peerFillBytes());
        counter("starling_fetch_failures", "fetches or verifications that failed (the read got EIO or went on elsewhere)",
                daemon, d -> d.totals().failures());
        for (LayerReader.ReadSource source : LayerReader.ReadSource.values()) {
            String tag = source.name().toLowerCase(java.util.Locale.ROOT);
            FunctionTimer.builder("starling_read", daemon, d -> d.totals().readCount(source),
                            d -> d.totals().readNanos(source), TimeUnit.NANOSECONDS)
                    .description("chunk reads for FUSE and their time, by the tier that answered (network: peers or registry)")
                    .tags("source", tag).register(registry);
        }
        counter("starling_verification_failures", "chunks that did not match the TOC, by where they came from", daemon,
                d -> d.quarantines(), "source", "peer");
        counter("starling_verification_failures", "chunks that did not match the TOC, by where they came from", daemon,
                d -> d.totals().registryVerificationFailures(), "source", "registry");
        counter("starling_verification_failures", "chunks that did not match the TOC, by where they came from", daemon,
                d -> d.diskVerificationFailures(), "source", "disk");
        counter("starling_quarantines", "peers quarantined for sending bytes that do not match the TOC", daemon,
                d -> d.quarantines());
        counter("starling_refused_registry_requests", "peer requests naming a registry outside the allowlist", daemon,
                d -> d.refusedRegistryRequests());
        counter("starling_peer_forbidden_requests", "peer requests for blobs the requester may not read here (--peer-access)",
                daemon, d -> d.forbiddenPeerRequests());
        counter("starling_peer_refused_connections", "peer connections closed: bad handshake, not the protocol, too slow, over the limits",
                daemon, d -> d.refusedPeerConnections());
        for (dev.starling.peer.PeerFallbacks.Reason reason : dev.starling.peer.PeerFallbacks.Reason.values()) {
            counter("starling_peer_fallbacks", "reads that went past a peer to the next source, by why", daemon,
                    d -> d.peerFallbacks(reason), "reason", reason.label());
        }
        Gauge.builder("starling_members", daemon, d -> d.memberCount()).description("live members, this node included")
                .register(registry);
        Gauge.builder("starling_open_layers", daemon, d -> d.openLayerCount()).register(registry);
        Gauge.builder("starling_memory_tier_bytes", daemon, d -> d.memoryTierBytes()).register(registry);
        Gauge.builder("starling_disk_tier_bytes", daemon, d -> d.diskTierBytes()).register(registry);
        Gauge.builder("starling_process_resident_bytes", daemon, d -> ProcessMemory.residentBytes())
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

    private void counter(String name, String help, Daemon daemon, ToDoubleFunction<Daemon> value, String... tags) {
        FunctionCounter.builder(name, daemon, value).description(help).tags(tags).register(registry);
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
