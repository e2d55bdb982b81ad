package dev.starling.estargz.tar;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.stream.Stream;

/** Writes a tar stream: entries from headers, or a whole directory tree (sorted, for reproducible output). */
public final class TarWriter implements AutoCloseable {
    private final OutputStream out;

    public TarWriter(OutputStream out) {
        this.out = out;
    }

    public void add(TarHeader header, byte[] data) throws IOException {
        header.size = header.hasData() ? data.length : 0;
        out.write(header.encode());
        if (header.hasData()) {
            out.write(data);
            padTo512(data.length);
        }
    }

    public void add(TarHeader header, InputStream data) throws IOException {
        out.write(header.encode());
        if (header.hasData()) {
            long copied = data.transferTo(out);
            if (copied != header.size) {
                throw new IOException(header.name + " changed size while archiving");
            }
            padTo512(copied);
        }
    }

    /** Adds {@code dir}'s contents under {@code prefix} (e.g. "lib/"), directories first, names sorted. */
    public void addTree(Path dir, String prefix) throws IOException {
        List<Path> paths;
        try (Stream<Path> walk = Files.walk(dir)) {
            paths = walk.sorted().toList();
        }
        for (Path p : paths) {
            String rel = dir.relativize(p).toString();
            PosixFileAttributes a = Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            TarHeader h = new TarHeader();
            h.mode = modeOf(a);
            h.modTime = a.lastModifiedTime().toMillis() / 1000;
            if (a.isDirectory()) {
                h.type = TarHeader.DIR;
                h.name = prefix + (rel.isEmpty() ? "" : rel + "/");
                if (h.name.isEmpty()) {
                    continue;
                }
                add(h, new byte[0]);
            } else if (a.isSymbolicLink()) {
                h.type = TarHeader.SYMLINK;
                h.name = prefix + rel;
                h.linkName = Files.readSymbolicLink(p).toString();
                add(h, new byte[0]);
            } else if (a.isRegularFile()) {
                h.name = prefix + rel;
                h.size = a.size();
                try (InputStream in = Files.newInputStream(p)) {
                    add(h, in);
                }
            }
        }
    }

    private static long modeOf(PosixFileAttributes a) {
        long mode = 0;
        for (PosixFilePermission p : a.permissions()) {
            mode |= 1L << (8 - p.ordinal());
        }
        return mode;
    }

    private void padTo512(long length) throws IOException {
        int pad = (int) ((512 - length % 512) % 512);
        out.write(new byte[pad]);
    }

    /** Writes the end-of-archive marker; does not close the underlying stream. */
    public void finish() throws IOException {
        out.write(new byte[1024]);
    }

    @Override
    public void close() throws IOException {
        finish();
        out.flush();
    }
}
