package dev.starling.estargz.write;

import com.github.luben.zstd.ZstdInputStream;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * The converter's input as an uncompressed tar file with random access. A gzip or zstd input is
 * decompressed once into a temporary file beside the output (reordering entries needs random access;
 * the reference converter spools to a temporary file too); a plain tar is used in place.
 */
final class PlainTar implements AutoCloseable {
    final Path path;
    private final boolean temporary;

    private PlainTar(Path path, boolean temporary) {
        this.path = path;
        this.temporary = temporary;
    }

    static PlainTar of(Path input, Path tempDir) throws IOException {
        byte[] magic = new byte[4];
        try (InputStream in = Files.newInputStream(input)) {
            int n = in.readNBytes(magic, 0, 4);
            if (n < 4) {
                return new PlainTar(input, false);
            }
        }
        boolean gzip = (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b;
        boolean zstd = (magic[0] & 0xff) == 0x28 && (magic[1] & 0xff) == 0xb5 && (magic[2] & 0xff) == 0x2f
                && (magic[3] & 0xff) == 0xfd;
        if (!gzip && !zstd) {
            return new PlainTar(input, false);
        }
        Path tmp = Files.createTempFile(tempDir, ".starling-input-", ".tar");
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(input), 1 << 20);
             InputStream in = gzip ? new GZIPInputStream(raw, 1 << 16) : new ZstdInputStream(raw);
             OutputStream out = Files.newOutputStream(tmp)) {
            in.transferTo(out);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw new IOException("cannot decompress " + input + " (" + (gzip ? "gzip" : "zstd") + "): "
                    + e.getMessage(), e);
        }
        return new PlainTar(tmp, true);
    }

    @Override
    public void close() throws IOException {
        if (temporary) {
            Files.deleteIfExists(path);
        }
    }
}
