package dev.starling.estargz.write;

import dev.starling.estargz.InvalidBlobException;

/** A path given to {@code --prioritize} is not in the layer being converted. */
public final class MissingPrioritizedFileException extends InvalidBlobException {
    private final String path;

    public MissingPrioritizedFileException(String path) {
        super("prioritized file \"" + path + "\" is not in the layer");
        this.path = path;
    }

    public String path() {
        return path;
    }
}
