package dev.starling.cli;

/** Byte counts for people, and the size suffixes accepted on the command line. */
final class Sizes {
    private Sizes() {
    }

    static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format("%.1f %s", v, units[u]);
    }

    /** Parses {@code 4194304}, {@code 4M}, {@code 4MiB}, {@code 64k}, up to 2 GiB. */
    static int parse(String text) {
        long v = parseLong(text);
        if (v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("size out of range: " + text);
        }
        return (int) v;
    }

    /** Parses sizes with k, M, G, T suffixes (binary). */
    static long parseLong(String text) {
        String t = text.trim().toLowerCase(java.util.Locale.ROOT).replace("ib", "").replace("b", "");
        long multiplier = 1;
        if (t.endsWith("t")) {
            multiplier = 1L << 40;
        } else if (t.endsWith("k")) {
            multiplier = 1 << 10;
        } else if (t.endsWith("m")) {
            multiplier = 1 << 20;
        } else if (t.endsWith("g")) {
            multiplier = 1 << 30;
        }
        if (multiplier != 1) {
            t = t.substring(0, t.length() - 1);
        }
        long v = Math.multiplyExact(Long.parseLong(t), multiplier);
        if (v < 0) {
            throw new IllegalArgumentException("size out of range: " + text);
        }
        return v;
    }

    static final class LongConverter implements picocli.CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            return parseLong(value);
        }
    }

    static final class Converter implements picocli.CommandLine.ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            return parse(value);
        }
    }
}
