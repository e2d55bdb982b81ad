package dev.starling.estargz.tar;

import dev.starling.estargz.InvalidBlobException;

/** The input is not a tar archive we can convert; the message names the entry or offset. */
public final class TarFormatException extends InvalidBlobException {
    public TarFormatException(String message) {
        super(message);
    }
}
