package dev.starling.protocol;

import java.io.IOException;

/** A peer could not answer; the subclasses say how, so a caller knows whether to ask the next source. */
public class PeerException extends IOException {
    public PeerException(String message) {
        super(message);
    }

    public PeerException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The peer is at its limits: ask someone else, or again after {@link #retryAfterMillis}. */
    public static final class Busy extends PeerException {
        private final int retryAfterMillis;
        private final java.util.List<String> holders;

        public Busy(String peer, int retryAfterMillis) {
            this(peer, retryAfterMillis, java.util.List.of());
        }

        public Busy(String peer, int retryAfterMillis, java.util.List<String> holders) {
            super(peer + " is busy; retry after " + retryAfterMillis + " ms" + (holders.isEmpty() ? "" : ", or ask " + holders));
            this.retryAfterMillis = retryAfterMillis;
            this.holders = java.util.List.copyOf(holders);
        }

        public int retryAfterMillis() {
            return retryAfterMillis;
        }

        /** Peers the busy one knows to hold the span (node ids), for the requester to ask instead. */
        public java.util.List<String> holders() {
            return holders;
        }
    }

    /** The peer refused the request or the handshake, or failed serving it. */
    public static final class Refused extends PeerException {
        private final Frame.ErrorCode code;

        public Refused(String peer, Frame.ErrorCode code, String message) {
            super(peer + " refused (" + code + "): " + message);
            this.code = code;
        }

        public Frame.ErrorCode code() {
            return code;
        }
    }

    /** The connection ended (the peer died, or sent what is not the protocol) before the answer came. */
    public static final class Closed extends PeerException {
        public Closed(String message) {
            super(message);
        }
    }

    /**
     * The peer broke the protocol (a frame longer than the chunk it answers, bytes that are not
     * frames): treated like a chunk that fails verification, its sender quarantined.
     */
    public static final class Violation extends PeerException {
        public Violation(String message) {
            super(message);
        }
    }
}
