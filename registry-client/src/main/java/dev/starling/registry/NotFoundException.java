package dev.starling.registry;

/** The registry has no such manifest or blob (HTTP 404). */
public final class NotFoundException extends RegistryException {
    public NotFoundException(String message) {
        super(message, 404);
    }
}
