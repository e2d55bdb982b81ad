package dev.starling.registry;

import java.io.IOException;

/**
 * A registry answered with an error, could not be reached, or sent what cannot be used; the
 * message says which and why. The subclasses are the failures callers act on:
 * {@link NotFoundException}, {@link RangeMismatchException}, {@link InvalidManifestException} and
 * {@link ContentMismatchException}.
 */
public class RegistryException extends IOException {
    /** {@link #status()} of a failure that is not an HTTP error answer. */
    public static final int NO_STATUS = -1;
    private final int status;

    /** The registry answered HTTP {@code status}. */
    public RegistryException(String message, int status) {
        super(message);
        this.status = status;
    }

    /** No answer arrived, or the answer could not be read. */
    public RegistryException(String message, Throwable cause) {
        super(message, cause);
        this.status = NO_STATUS;
    }

    /** The HTTP status of an error answer, or {@link #NO_STATUS}. */
    public int status() {
        return status;
    }
}
