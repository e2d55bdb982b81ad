package dev.starling.estargz;

/** Bytes do not match the digest the TOC (or the manifest) promised for them. */
public final class VerificationException extends InvalidBlobException {
    public VerificationException(String message) {
        super(message);
    }
}
