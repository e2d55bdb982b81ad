package dev.starling.fuse;

import dev.starling.estargz.ChunkSource;
import dev.starling.estargz.RangeReader;
import dev.starling.estargz.TocIndex;

/**
 * A layer as the store serves it.
 *
 * @param info    the {@code info} file: containers/storage's layer JSON, in the form the key implies
 * @param blob    the compressed blob, read by range
 * @param state   shown under {@code diff/.stargz-snapshotter}, or null
 * @param release lets go of the layer
 */
public record ServedLayer(TocIndex index, ChunkSource chunks, byte[] info, RangeReader blob, long blobSize,
                          StateFile state, Runnable release) {
}
