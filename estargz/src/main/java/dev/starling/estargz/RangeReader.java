package dev.starling.estargz;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;

/**
 * Random access to a blob's compressed bytes: a local file, a registry blob, a peer. The reader
 * asks for a few large ranges (footer, TOC, chunk spans), so implementations need not buffer.
 */
public interface RangeReader extends Closeable {

    /** Total blob size in bytes. */
    long size() throws IOException;

    /** Reads exactly {@code length} bytes at {@code offset}, or throws {@link EOFException}. */
    byte[] read(long offset, int length) throws IOException;

    @Override
    default void close() throws IOException {
    }

    static RangeReader of(byte[] blob) {
        Objects.requireNonNull(blob);
        return new RangeReader() {
            @Override
            public long size() {
                return blob.length;
            }

            @Override
            public byte[] read(long offset, int length) throws IOException {
                if (offset < 0 || length < 0 || offset + length > blob.length) {
                    throw new EOFException("range [" + offset + ", +" + length + ") is outside the "
                            + blob.length + "-byte blob");
                }
                byte[] out = new byte[length];
                System.arraycopy(blob, (int) offset, out, 0, length);
                return out;
            }
        };
    }

    static RangeReader open(Path file) throws IOException {
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        return new RangeReader() {
            @Override
            public long size() throws IOException {
                return channel.size();
            }

            @Override
            public byte[] read(long offset, int length) throws IOException {
                if (offset < 0 || length < 0 || offset + length > channel.size()) {
                    throw new EOFException("range [" + offset + ", +" + length + ") is outside "
                            + file + " (" + channel.size() + " bytes)");
                }
                ByteBuffer buffer = ByteBuffer.allocate(length);
                while (buffer.hasRemaining()) {
                    if (channel.read(buffer, offset + buffer.position()) < 0) {
                        throw new EOFException(file + " shrank while reading");
                    }
                }
                return buffer.array();
            }

            @Override
            public void close() throws IOException {
                channel.close();
            }
        };
    }
}
