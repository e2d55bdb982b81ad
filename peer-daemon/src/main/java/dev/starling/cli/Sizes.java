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

    /** Parses durations such as {@code 500ms}, {@code 90s}, {@code 2m}, {@code 1h}; a bare number is seconds. */
    static java.time.Duration parseDuration(String text) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9]{1,9})(ms|s|m|h)?").matcher(text.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("a duration is a number with ms, s, m or h (90s, 2m), not \"" + text + "\"");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2) == null ? "s" : m.group(2)) {
            case "ms" -> java.time.Duration.ofMillis(n);
            case "m" -> java.time.Duration.ofMinutes(n);
            case "h" -> java.time.Duration.ofHours(n);
            default -> java.time.Duration.ofSeconds(n);
        };
    }

    static final class DurationConverter implements picocli.CommandLine.ITypeConverter<java.time.Duration> {
        @Override
        public java.time.Duration convert(String value) {
            return parseDuration(value);
        }
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
