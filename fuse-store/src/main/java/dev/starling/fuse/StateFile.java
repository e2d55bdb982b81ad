package dev.starling.fuse;

import java.util.function.Supplier;

/**
 * The layer's live status, shown as {@code /.stargz-snapshotter/<name>} in the mount (the
 * reference snapshotter's path, so liveness probes written for it keep working): a directory hidden
 * from readdir but reachable by name, holding one read-only JSON file produced afresh on each read.
 */
public record StateFile(String name, Supplier<byte[]> contents) {
    public static final String DIRECTORY = ".stargz-snapshotter";

    public StateFile {
        if (name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException("bad state file name " + name);
        }
    }
}
