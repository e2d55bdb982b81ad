package dev.starling.daemon;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * One daemon per root: {@code ROOT/daemon.lock}, locked for the daemon's life (the kernel lets go of
 * it when the process dies, however it dies) and holding its pid, so a second daemon on the same
 * disk tier, mounts and snapshotter state refuses to start and says who has it.
 */
final class RootLock implements AutoCloseable {
    private final FileChannel file;
    private final FileLock lock;

    private RootLock(FileChannel file, FileLock lock) {
        this.file = file;
        this.lock = lock;
    }

    static RootLock acquire(Path root) throws IOException {
        Path path = root.resolve("daemon.lock");
        FileChannel file = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = file.tryLock();
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
        if (lock == null) {
            ByteBuffer pid = ByteBuffer.allocate(32);
            file.read(pid, 0);
            file.close();
            String holder = new String(pid.array(), 0, pid.position(), StandardCharsets.US_ASCII).strip();
            throw new IOException("another starling daemon runs on --root " + root + (holder.isEmpty() ? "" : " (pid " + holder + ")")
                    + ": stop it first, or give this one a --root of its own");
        }
        file.truncate(0);
        file.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)), 0);
        return new RootLock(file, lock);
    }

    @Override
    public void close() throws IOException {
        lock.release();
        file.close();
    }
}
