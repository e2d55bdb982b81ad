package dev.starling.estargz;

/** The blob is a well-formed variant this reader deliberately does not serve (it names which). */
public final class UnsupportedFormatException extends InvalidBlobException {
    public UnsupportedFormatException(String message) {
        super(message);
    }
}
