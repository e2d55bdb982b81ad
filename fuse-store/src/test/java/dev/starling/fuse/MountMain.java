package dev.starling.fuse;

import dev.starling.estargz.EStargzBlob;
import dev.starling.estargz.RangeReader;
import java.nio.file.Path;

/** A mount in a process of its own, for tests that kill it: BLOB TOC_DIGEST MOUNT_POINT. */
public final class MountMain {
    public static void main(String[] args) throws Exception {
        RangeReader reader = RangeReader.open(Path.of(args[0]));
        EStargzBlob blob = EStargzBlob.open(reader, args[1]);
        LayerMount.mount(blob.index(), blob::readChunk, Path.of(args[2]), "child");
        System.out.println("mounted");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
