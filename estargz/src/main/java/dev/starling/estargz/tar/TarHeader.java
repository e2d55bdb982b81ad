package dev.starling.estargz.tar;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

/**
 * The metadata of one tar entry, after PAX and GNU long-name records are applied, and its
 * re-encoding as USTAR (with a PAX header when a field does not fit, like Go's tar writer).
 * PAX values stay bytes: xattrs may hold any bytes, which a String-based tar library would mangle.
 */
public final class TarHeader {
    public static final byte REG = '0', HARDLINK = '1', SYMLINK = '2', CHAR = '3', BLOCK = '4', DIR = '5',
            FIFO = '6';

    public String name = "";
    public String linkName = "";
    public byte type = REG;
    public long mode;
    public long uid;
    public long gid;
    public String userName = "";
    public String groupName = "";
    public long size;
    /** Unix seconds. */
    public long modTime;
    /** The input's PAX mtime when it has a fraction ("1700000000.123"), kept so lossy output loses no precision. */
    public String preciseModTime;
    public long devMajor;
    public long devMinor;
    /** SCHILY.xattr.* records, prefix stripped; sorted by name. */
    public final Map<String, byte[]> xattrs = new TreeMap<>();

    public static TarHeader regularFile(String name, long size) {
        TarHeader h = new TarHeader();
        h.name = name;
        h.size = size;
        return h;
    }

    public boolean hasData() {
        return type == REG;
    }

    /** USTAR block(s) for this header, preceded by a PAX header when some field needs one. */
    public byte[] encode() {
        Map<String, byte[]> pax = new TreeMap<>();
        byte[] block = new byte[512];
        String ustarName = name, prefix = "";
        if (!fitsUstarString(name, 100)) {
            int split = splitUstarPath(name);
            if (split > 0) {
                prefix = name.substring(0, split);
                ustarName = name.substring(split + 1);
            } else {
                pax.put("path", utf8(name));
                ustarName = asciiPrefix(name, 100);
            }
        }
        putString(block, 0, 100, ustarName);
        putNumber(block, 100, 8, mode & 07777777, pax, null);
        putNumber(block, 108, 8, uid, pax, "uid");
        putNumber(block, 116, 8, gid, pax, "gid");
        putNumber(block, 124, 12, hasData() ? size : 0, pax, "size");
        putNumber(block, 136, 12, modTime, pax, "mtime");
        if (preciseModTime != null) {
            pax.put("mtime", utf8(preciseModTime));
        }
        block[156] = type;
        if (!fitsUstarString(linkName, 100)) {
            pax.put("linkpath", utf8(linkName));
        }
        putString(block, 157, 100, asciiPrefix(linkName, 100));
        System.arraycopy("ustar\u000000".getBytes(StandardCharsets.US_ASCII), 0, block, 257, 8);
        if (!fitsUstarString(userName, 32)) {
            pax.put("uname", utf8(userName));
        }
        putString(block, 265, 32, asciiPrefix(userName, 32));
        if (!fitsUstarString(groupName, 32)) {
            pax.put("gname", utf8(groupName));
        }
        putString(block, 297, 32, asciiPrefix(groupName, 32));
        if (type == CHAR || type == BLOCK) {
            putNumber(block, 329, 8, devMajor, pax, null);
            putNumber(block, 337, 8, devMinor, pax, null);
        }
        putString(block, 345, 155, prefix);
        for (Map.Entry<String, byte[]> x : xattrs.entrySet()) {
            pax.put("SCHILY.xattr." + x.getKey(), x.getValue());
        }
        checksum(block);
        if (pax.isEmpty()) {
            return block;
        }
        byte[] records = paxRecords(pax);
        TarHeader paxHeader = new TarHeader();
        paxHeader.type = 'x';
        paxHeader.name = asciiPrefix("PaxHeaders.0/" + baseName(name), 100);
        paxHeader.size = records.length;
        byte[] paxBlock = new byte[512];
        putString(paxBlock, 0, 100, paxHeader.name);
        putNumber(paxBlock, 100, 8, 0, null, null);
        putNumber(paxBlock, 108, 8, 0, null, null);
        putNumber(paxBlock, 116, 8, 0, null, null);
        putNumber(paxBlock, 124, 12, records.length, null, null);
        putNumber(paxBlock, 136, 12, 0, null, null);
        paxBlock[156] = 'x';
        System.arraycopy("ustar\u000000".getBytes(StandardCharsets.US_ASCII), 0, paxBlock, 257, 8);
        checksum(paxBlock);
        int padded = (records.length + 511) & ~511;
        byte[] out = new byte[512 + padded + 512];
        System.arraycopy(paxBlock, 0, out, 0, 512);
        System.arraycopy(records, 0, out, 512, records.length);
        System.arraycopy(block, 0, out, 512 + padded, 512);
        return out;
    }

    private static byte[] paxRecords(Map<String, byte[]> pax) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Map.Entry<String, byte[]> r : pax.entrySet()) {
            byte[] key = utf8(r.getKey());
            int body = 1 + key.length + 1 + r.getValue().length + 1; // " key=value\n"
            int length = body + String.valueOf(body).length();
            if (String.valueOf(length).length() != String.valueOf(body).length()) {
                length = body + String.valueOf(length).length();
            }
            out.writeBytes(utf8(length + " "));
            out.writeBytes(key);
            out.write('=');
            out.writeBytes(r.getValue());
            out.write('\n');
        }
        return out.toByteArray();
    }

    private static int splitUstarPath(String name) {
        if (!isAscii(name) || name.length() > 256) {
            return -1;
        }
        for (int i = Math.min(name.length() - 1, 155); i > 0; i--) {
            if (name.charAt(i) == '/' && name.length() - i - 1 <= 100 && name.length() - i - 1 > 0) {
                return i;
            }
        }
        return -1;
    }

    private static boolean fitsUstarString(String s, int width) {
        return isAscii(s) && s.length() <= width;
    }

    private static boolean isAscii(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == 0 || c >= 0x80) {
                return false;
            }
        }
        return true;
    }

    private static String asciiPrefix(String s, int width) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < width; i++) {
            char c = s.charAt(i);
            if (c > 0 && c < 0x80) {
                b.append(c);
            }
        }
        return b.toString();
    }

    private static String baseName(String name) {
        String trimmed = name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
        return trimmed.substring(trimmed.lastIndexOf('/') + 1);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static void putString(byte[] b, int at, int width, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(bytes, 0, b, at, Math.min(width, bytes.length));
    }

    /** Octal with a NUL terminator; values that do not fit go to PAX (or base-256 when no PAX key). */
    private static void putNumber(byte[] b, int at, int width, long value, Map<String, byte[]> pax, String key) {
        long max = (1L << (3 * (width - 1))) - 1;
        if (value >= 0 && value <= max) {
            String octal = Long.toOctalString(value);
            String padded = "0".repeat(width - 1 - octal.length()) + octal;
            putString(b, at, width - 1, padded);
            b[at + width - 1] = 0;
            return;
        }
        if (pax != null && key != null) {
            pax.put(key, utf8(Long.toString(value)));
        }
        // GNU base-256: high bit set, big-endian two's complement in the remaining bytes.
        b[at] = (byte) (value < 0 ? 0xff : 0x80);
        for (int i = width - 1; i > 0; i--) {
            b[at + i] = (byte) value;
            value >>= 8;
        }
    }

    static void checksum(byte[] block) {
        java.util.Arrays.fill(block, 148, 156, (byte) ' ');
        long sum = 0;
        for (int i = 0; i < 512; i++) {
            sum += block[i] & 0xff;
        }
        String octal = Long.toOctalString(sum);
        putString(block, 148, 6, "0".repeat(6 - octal.length()) + octal);
        block[154] = 0;
        block[155] = ' ';
    }

    /** A NUL-terminated header string field. */
    public static String string(byte[] b, int at, int width) {
        int end = at;
        while (end < at + width && b[end] != 0) {
            end++;
        }
        return new String(b, at, end - at, StandardCharsets.UTF_8);
    }

    /** An octal (space/NUL padded) or GNU base-256 numeric field; -1 when malformed. */
    public static long number(byte[] b, int at, int width) {
        if ((b[at] & 0x80) != 0) {
            if ((b[at] & 0xff) == 0xff) {
                return -1; // negative: not meaningful for any field we read
            }
            long v = b[at] & 0x7f;
            for (int i = 1; i < width; i++) {
                if ((v >>> 55) != 0) {
                    return -1;
                }
                v = (v << 8) | (b[at + i] & 0xff);
            }
            return v;
        }
        int i = at, end = at + width;
        while (i < end && (b[i] == ' ' || b[i] == 0)) {
            i++;
        }
        long v = 0;
        boolean digits = false;
        for (; i < end && b[i] >= '0' && b[i] <= '7'; i++) {
            if ((v >>> 60) != 0) {
                return -1;
            }
            v = (v << 3) | (b[i] - '0');
            digits = true;
        }
        for (; i < end; i++) {
            if (b[i] != ' ' && b[i] != 0) {
                return -1;
            }
        }
        return digits ? v : 0;
    }
}
