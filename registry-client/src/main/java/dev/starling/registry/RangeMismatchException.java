package dev.starling.registry;

/** The answer to a Range request is not the bytes asked for: other ranges, a bad Content-Range, or more than one response may hold. */
public final class RangeMismatchException extends RegistryException {
    public RangeMismatchException(String message) {
        super(message, NO_STATUS);
    }
}
