package dev.starling.registry;

/** Bytes that do not hash to the digest that names them: the registry served other content than was asked for. */
public final class ContentMismatchException extends RegistryException {
    public ContentMismatchException(String message) {
        super(message, NO_STATUS);
    }
}
