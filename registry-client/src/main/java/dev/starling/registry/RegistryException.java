package dev.starling.registry;

import java.io.IOException;

/** A registry answered with an error, or could not be reached; the message says which and why. */
public class RegistryException extends IOException {
    private final int status;

    public RegistryException(String message, int status) {
        super(message);
        this.status = status;
    }

    public RegistryException(String message, Throwable cause) {
        super(message, cause);
        this.status = -1;
    }

    /** HTTP status, or -1 when no response arrived. */
    public int status() {
        return status;
    }
}
