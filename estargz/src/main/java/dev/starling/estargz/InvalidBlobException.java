package dev.starling.estargz;

import java.io.IOException;

/** The blob or its TOC is malformed, hostile or truncated; the message says where and why. */
public class InvalidBlobException extends IOException {
    public InvalidBlobException(String message) {
        super(message);
    }

    public InvalidBlobException(String message, Throwable cause) {
        super(message, cause);
    }
}
