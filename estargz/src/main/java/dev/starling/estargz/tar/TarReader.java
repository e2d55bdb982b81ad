package dev.starling.estargz.tar;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the entries of an uncompressed tar file (USTAR, PAX, GNU, v7) without touching payloads,
 * keeping every byte offset so a converter can copy raw bytes (lossless mode) or payload ranges.
 * Refuses what the reference converter refuses: global PAX headers, sparse files, volume labels.
 */
public final class TarReader implements Closeable {
    /** PAX and GNU long-name records larger than this are hostile, not long names. */
    private static final int MAX_EXTENSION_BYTES = 1 << 20;

    private final FileChannel channel;
    private final long fileSize;
    private final Path path;
    private long position;
    private long endOfEntries = -1;

    public TarReader(Path tarFile) throws IOException {
        this.path = tarFile;
        this.channel = FileChannel.open(tarFile, StandardOpenOption.READ);
        this.fileSize = channel.size();
    }

    /** All entries, in archive order. */
    public List<TarEntry> readAll() throws IOException {
        List<TarEntry> entries = new ArrayList<>();
        for (TarEntry e = next(); e != null; e = next()) {
            entries.add(e);
        }
        return entries;
    }

    /**
     * Where the entries end: the end-of-archive marker, or the file's end when the archive has none.
     * Valid after {@link #next()} returned null.
     */
    public long endOfEntries() {
        return endOfEntries;
    }

    /** Exactly {@code length} bytes of the archive at {@code at} (payloads, raw headers). */
    public byte[] read(long at, int length) throws IOException {
        return readExact(at, length);
    }

    /** The next entry, or null at the end-of-archive marker (or a clean end of file). */
    public TarEntry next() throws IOException {
        if (endOfEntries >= 0) {
            return null;
        }
        long start = position;
        byte[] pendingPath = null, pendingLink = null;
        java.util.Map<String, byte[]> pax = null;
        while (true) {
            if (position == fileSize) {
                if (position != start) {
                    throw new TarFormatException("archive ends after an extension header at offset " + start);
                }
                endOfEntries = position;
                return null;
            }
            byte[] block = readBlock(position);
            if (isZero(block)) {
                if (position != start) {
                    throw new TarFormatException("end-of-archive right after an extension header at offset " + start);
                }
                endOfEntries = position;
                return null;
            }
            verifyChecksum(block, position);
            byte type = block[156];
            long size = TarHeader.number(block, 124, 12);
            if (size < 0) {
                throw new TarFormatException("tar header at offset " + position + " has an invalid size field");
            }
            long dataStart = position + 512;
            switch (type) {
                case 'x', 'L', 'K' -> {
                    if (size > MAX_EXTENSION_BYTES) {
                        throw new TarFormatException("extension header at offset " + position + " is " + size
                                + " bytes long");
                    }
                    byte[] data = readExact(dataStart, (int) size);
                    if (type == 'x') {
                        pax = parsePax(data, position, pax);
                    } else if (type == 'L') {
                        pendingPath = trimNul(data);
                    } else {
                        pendingLink = trimNul(data);
                    }
                    position = dataStart + pad(size);
                    continue;
                }
                case 'g' -> throw new TarFormatException("global PAX header at offset " + position
                        + " is not supported (the reference converter refuses it too)");
                case 'S' -> throw new TarFormatException("GNU sparse file at offset " + position + " is not supported");
                default -> {
                }
            }
            TarHeader h = parseHeader(block, position);
            if (pendingPath != null) {
                h.name = new String(pendingPath, StandardCharsets.UTF_8);
            }
            if (pendingLink != null) {
                h.linkName = new String(pendingLink, StandardCharsets.UTF_8);
            }
            if (pax != null) {
                applyPax(h, pax, position);
            }
            long dataLength = h.hasData() ? h.size : 0;
            if (dataLength > 0 && dataStart + pad(dataLength) > fileSize) {
                throw new TarFormatException("entry \"" + h.name + "\" is truncated: " + dataLength
                        + " bytes of data at offset " + dataStart + " but the archive is " + fileSize + " bytes");
            }
            long end = dataStart + pad(dataLength);
            position = end;
            return new TarEntry(h, start, dataStart, end);
        }
    }

    private TarHeader parseHeader(byte[] b, long at) throws TarFormatException {
        TarHeader h = new TarHeader();
        byte type = b[156];
        h.type = switch (type) {
            case 0, '0', '7' -> TarHeader.REG;
            case '1', '2', '3', '4', '5', '6' -> type;
            default -> throw new TarFormatException("tar entry \"" + TarHeader.string(b, 0, 100) + "\" at offset "
                    + at + " has unsupported type '" + (char) type + "'");
        };
        h.name = TarHeader.string(b, 0, 100);
        boolean ustar = b[257] == 'u' && b[258] == 's' && b[259] == 't' && b[260] == 'a' && b[261] == 'r';
        boolean posix = ustar && b[262] == 0;
        if (posix && b[345] != 0) {
            h.name = TarHeader.string(b, 345, 155) + "/" + h.name;
        }
        if (type == 0 && h.name.endsWith("/")) {
            h.type = TarHeader.DIR; // old tars mark directories only by the slash
        }
        h.mode = field(b, 100, 8, "mode", h.name);
        h.uid = field(b, 108, 8, "uid", h.name);
        h.gid = field(b, 116, 8, "gid", h.name);
        h.size = field(b, 124, 12, "size", h.name);
        h.modTime = field(b, 136, 12, "mtime", h.name);
        h.linkName = TarHeader.string(b, 157, 100);
        if (ustar) {
            h.userName = TarHeader.string(b, 265, 32);
            h.groupName = TarHeader.string(b, 297, 32);
            if (h.type == TarHeader.CHAR || h.type == TarHeader.BLOCK) {
                h.devMajor = field(b, 329, 8, "devmajor", h.name);
                h.devMinor = field(b, 337, 8, "devminor", h.name);
            }
        }
        return h;
    }

    private static long field(byte[] b, int at, int width, String what, String name) throws TarFormatException {
        long v = TarHeader.number(b, at, width);
        if (v < 0) {
            throw new TarFormatException("tar entry \"" + name + "\" has an invalid " + what + " field");
        }
        return v;
    }

    private static java.util.Map<String, byte[]> parsePax(byte[] data, long at, java.util.Map<String, byte[]> into)
            throws TarFormatException {
        java.util.Map<String, byte[]> records = into == null ? new java.util.LinkedHashMap<>() : into;
        int pos = 0;
        while (pos < data.length) {
            if (data[pos] == 0) {
                break; // NUL padding after the last record
            }
            int space = pos;
            while (space < data.length && data[space] != ' ') {
                space++;
            }
            int length;
            try {
                length = Integer.parseInt(new String(data, pos, space - pos, StandardCharsets.US_ASCII));
            } catch (NumberFormatException e) {
                throw new TarFormatException("PAX header at offset " + at + " has a malformed record length");
            }
            int end = pos + length;
            if (length <= 0 || space >= end || end > data.length || data[end - 1] != '\n') {
                throw new TarFormatException("PAX header at offset " + at + " has a malformed record");
            }
            int eq = space + 1;
            while (eq < end - 1 && data[eq] != '=') {
                eq++;
            }
            if (eq >= end - 1) {
                throw new TarFormatException("PAX header at offset " + at + " has a record without '='");
            }
            String key = new String(data, space + 1, eq - space - 1, StandardCharsets.UTF_8);
            byte[] value = java.util.Arrays.copyOfRange(data, eq + 1, end - 1);
            records.put(key, value);
            pos = end;
        }
        return records;
    }

    private static void applyPax(TarHeader h, java.util.Map<String, byte[]> pax, long at) throws TarFormatException {
        for (java.util.Map.Entry<String, byte[]> r : pax.entrySet()) {
            String key = r.getKey();
            String text = new String(r.getValue(), StandardCharsets.UTF_8);
            try {
                switch (key) {
                    case "path" -> h.name = text;
                    case "linkpath" -> h.linkName = text;
                    case "uname" -> h.userName = text;
                    case "gname" -> h.groupName = text;
                    case "uid" -> h.uid = Long.parseLong(text);
                    case "gid" -> h.gid = Long.parseLong(text);
                    case "size" -> h.size = Long.parseLong(text);
                    case "mtime" -> {
                        h.modTime = (long) Math.floor(Double.parseDouble(text));
                        h.preciseModTime = text.indexOf('.') >= 0 ? text : null;
                    }
                    default -> {
                        if (key.startsWith("SCHILY.xattr.")) {
                            h.xattrs.put(key.substring("SCHILY.xattr.".length()), r.getValue());
                        } else if (key.startsWith("GNU.sparse.")) {
                            throw new TarFormatException("GNU sparse file \"" + h.name + "\" is not supported");
                        }
                    }
                }
            } catch (NumberFormatException e) {
                throw new TarFormatException("PAX record " + key + "=" + text + " at offset " + at + " is not a number");
            }
        }
        if (h.uid < 0 || h.gid < 0 || h.size < 0) {
            throw new TarFormatException("PAX header at offset " + at + " has a negative uid, gid or size");
        }
    }

    private static void verifyChecksum(byte[] b, long at) throws TarFormatException {
        long stored = TarHeader.number(b, 148, 8);
        long unsigned = 0, signed = 0;
        for (int i = 0; i < 512; i++) {
            int v = i >= 148 && i < 156 ? ' ' : b[i];
            unsigned += v & 0xff;
            signed += v;
        }
        if (stored != unsigned && stored != signed) {
            throw new TarFormatException("not a tar archive, or a corrupt one: header checksum mismatch at offset " + at);
        }
    }

    private byte[] readBlock(long at) throws IOException {
        if (at + 512 > fileSize) {
            throw new TarFormatException("archive is truncated: " + (fileSize - at) + " bytes of a header at offset " + at);
        }
        return readExact(at, 512);
    }

    private byte[] readExact(long at, int length) throws IOException {
        if (at + length > fileSize) {
            throw new TarFormatException("archive is truncated at offset " + at);
        }
        ByteBuffer buf = ByteBuffer.allocate(length);
        while (buf.hasRemaining()) {
            if (channel.read(buf, at + buf.position()) < 0) {
                throw new TarFormatException(path + " shrank while reading");
            }
        }
        return buf.array();
    }

    private static boolean isZero(byte[] block) {
        for (byte x : block) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private static byte[] trimNul(byte[] data) {
        int end = data.length;
        while (end > 0 && data[end - 1] == 0) {
            end--;
        }
        return java.util.Arrays.copyOf(data, end);
    }

    static long pad(long size) {
        return (size + 511) & ~511L;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
