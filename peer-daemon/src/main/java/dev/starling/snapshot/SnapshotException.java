package dev.starling.snapshot;

/**
 * A snapshot operation refused, as containerd's errdefs name the reasons; the gRPC service maps
 * each kind to its status code.
 */
public abstract sealed class SnapshotException extends Exception {
    SnapshotException(String message) {
        super(message);
    }

    /** No snapshot of that key or name (NOT_FOUND). */
    public static final class NotFound extends SnapshotException {
        NotFound(String message) {
            super(message);
        }
    }

    /** A snapshot of that key or name exists (ALREADY_EXISTS); also the answer to a remote layer's Prepare. */
    public static final class AlreadyExists extends SnapshotException {
        AlreadyExists(String message) {
            super(message);
        }
    }

    /** The snapshot is of the wrong kind for this, or has children (FAILED_PRECONDITION). */
    public static final class FailedPrecondition extends SnapshotException {
        FailedPrecondition(String message) {
            super(message);
        }
    }

    /** The request itself is wrong: an empty key, a label too long, a field that cannot change (INVALID_ARGUMENT). */
    public static final class InvalidArgument extends SnapshotException {
        InvalidArgument(String message) {
            super(message);
        }
    }

    /** A remote layer in the chain cannot be served now (UNAVAILABLE). */
    public static final class Unavailable extends SnapshotException {
        Unavailable(String message) {
            super(message);
        }
    }
}
