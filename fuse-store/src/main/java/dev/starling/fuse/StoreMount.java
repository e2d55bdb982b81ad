package dev.starling.fuse;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * The Additional Layer Store mounted at a directory ({@link StoreFileSystem}): what
 * {@code additionallayerstores = ["<dir>:ref"]} in containers/storage's {@code storage.conf} names.
 * Closing unmounts it and releases every layer it holds.
 */
public final class StoreMount implements AutoCloseable {
    /** The store's source in the mount table. */
    public static final String FS_NAME = "starling-store";

    private final LayerMount mount;
    private final StoreFileSystem fileSystem;

    private StoreMount(LayerMount mount, StoreFileSystem fileSystem) {
        this.mount = mount;
        this.fileSystem = fileSystem;
    }

    /**
     * Mounts the store at {@code mountPoint}.
     *
     * @param ttl how long a layer stays open after its last user (see {@link StoreFileSystem#sweep})
     */
    public static StoreMount mount(LayerSource layers, Path mountPoint, MountOptions options, Duration ttl,
                                   LongSupplier nanoTime) throws IOException {
        StoreFileSystem[] made = new StoreFileSystem[1];
        LayerMount mount = LayerMount.mount(errno -> made[0] = new StoreFileSystem(layers, errno, options, ttl, nanoTime),
                mountPoint, FS_NAME, options);
        return new StoreMount(mount, made[0]);
    }

    public Path mountPoint() {
        return mount.mountPoint();
    }

    public StoreFileSystem fileSystem() {
        return fileSystem;
    }

    @Override
    public void close() throws IOException {
        try {
            mount.close();
        } finally {
            fileSystem.releaseAll();
        }
    }
}
