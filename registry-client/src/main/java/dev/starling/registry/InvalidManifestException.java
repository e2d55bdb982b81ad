package dev.starling.registry;

/** A manifest or index that is not one this client reads: not JSON, too large, of an unknown type, or without the platform asked for. */
public final class InvalidManifestException extends RegistryException {
    public InvalidManifestException(String message) {
        super(message, NO_STATUS);
    }

    public InvalidManifestException(String message, Throwable cause) {
        super(message, cause);
    }
}
