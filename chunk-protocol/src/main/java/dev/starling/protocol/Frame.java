package dev.starling.protocol;

import java.util.List;

/**
 * One message of the peer protocol (docs/protocol.md has the bytes). Every frame but the
 * handshake belongs to a stream: the requester numbers its requests, and each answer names the
 * request it answers, so many requests share one connection.
 */
public sealed interface Frame {
    /** The protocol version this build speaks. */
    int VERSION = 3;

    /** The requester's first frame: which protocol, which cluster, which node. */
    record Hello(int version, String clusterId, String nodeId) implements Frame {
    }

    /** The server's answer to a hello it accepts. */
    record HelloOk(int version, String nodeId) implements Frame {
    }

    /**
     * Asks for chunks of one blob: where the blob is (so a node that lacks them can fetch them from
     * the registry itself, if its configuration allows that registry) and, per chunk, enough to
     * decode and verify it. The chunks lie in {@code [compressedOffset, compressedOffset + compressedLength)}.
     */
    record Request(int stream, Locator locator, List<ChunkRef> chunks) implements Frame {
        public Request {
            chunks = List.copyOf(chunks);
        }
    }

    /** One chunk's verified bytes: the {@code index}-th chunk of the request. */
    record Data(int stream, int index, byte[] bytes) implements Frame {
    }

    /** The server has not got the {@code index}-th chunk, and will not fetch it. */
    record Miss(int stream, int index) implements Frame {
    }

    /**
     * The server is at its limits; ask again after {@code retryAfterMillis}, or ask someone else:
     * {@code holders} (at most {@link #MAX_HOLDERS} node ids, version 3) are peers the server knows
     * to hold the span, the swarm a hot span spreads through.
     */
    record Busy(int stream, int retryAfterMillis, List<String> holders) implements Frame {
        public static final int MAX_HOLDERS = 16;

        public Busy {
            holders = List.copyOf(holders);
            if (holders.size() > MAX_HOLDERS) {
                throw new IllegalArgumentException(holders.size() + " holders, at most " + MAX_HOLDERS);
            }
        }

        public Busy(int stream, int retryAfterMillis) {
            this(stream, retryAfterMillis, List.of());
        }
    }

    /** The request is refused or failed; {@code code} says how. */
    record Error(int stream, ErrorCode code, String message) implements Frame {
    }

    /** The requester no longer wants the stream's answers. */
    record Cancel(int stream) implements Frame {
    }

    /**
     * The request is still being worked on (its chunks are being filled from the registry): sent
     * each {@link PeerServer#WORKING_EVERY} while no answer is ready, so a requester tells a busy
     * owner from a dead one by silence, not by how long a fill takes.
     */
    record Working(int stream) implements Frame {
    }

    /**
     * Where a blob is: the registry host, the repository, the blob digest ({@code sha256:<hex>}), the
     * digest of the TOC the requester verified the blob against (the layer's trust anchor: a server
     * that has not verified that TOC itself fetches and verifies it before it serves or fills
     * anything of the blob), how its members are compressed, whether the server may fill what it
     * lacks from the registry or answers only from what it holds, and the span of compressed bytes
     * that holds the chunks.
     */
    record Locator(String registry, String repository, String blobDigest, String tocDigest, boolean zstd, boolean heldOnly,
                   long compressedOffset, int compressedLength) {
        /** The same blob, asking only for what the server holds (a hedge: never a second fill). */
        public Locator askingHeldOnly() {
            return new Locator(registry, repository, blobDigest, tocDigest, zstd, true, compressedOffset, compressedLength);
        }

        /** The same blob, for the chunks in {@code [offset, offset + length)}. */
        public Locator span(long offset, int length) {
            return new Locator(registry, repository, blobDigest, tocDigest, zstd, heldOnly, offset, length);
        }
    }

    /** One chunk of a request: where it starts inside the span's member, how long it is, its sha256. */
    record ChunkRef(long compressedOffset, long compressedEnd, int innerOffset, int size, byte[] sha256) {
    }

    enum ErrorCode {
        /** The request names a registry this node does not fetch from. */
        REGISTRY_NOT_ALLOWED(1),
        /** The request is malformed or over a limit. */
        BAD_REQUEST(2),
        /** The server tried and failed (the registry is down, say). */
        FAILED(3),
        /** The handshake was refused (other cluster, other version). */
        REFUSED(4),
        /**
         * This node does not serve that blob to this requester (docs/operations.md#the-peer-port-who-may-read-what):
         * ask the registry, with the requester's own credentials.
         */
        FORBIDDEN(5);

        final int wire;

        ErrorCode(int wire) {
            this.wire = wire;
        }

        static ErrorCode of(int wire) {
            for (ErrorCode c : values()) {
                if (c.wire == wire) {
                    return c;
                }
            }
            return null;
        }
    }
}
