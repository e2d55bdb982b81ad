package dev.starling.estargz;

import java.util.ArrayDeque;
import java.util.Deque;

/** TOC name normalisation: Go's {@code path.Clean("/" + name)} without the leading slash. */
public final class Paths {
    private Paths() {
    }

    /** {@code ./a//b/../c/} becomes {@code a/c}; {@code ../x} becomes {@code x}: nothing escapes the root. */
    public static String clean(String name) {
        Deque<String> parts = new ArrayDeque<>();
        int start = 0;
        int n = name.length();
        while (start <= n) {
            int end = name.indexOf('/', start);
            if (end < 0) {
                end = n;
            }
            String part = name.substring(start, end);
            if (part.equals("..")) {
                parts.pollLast();
            } else if (!part.isEmpty() && !part.equals(".")) {
                parts.addLast(part);
            }
            start = end + 1;
        }
        return String.join("/", parts);
    }

    static String parent(String clean) {
        int slash = clean.lastIndexOf('/');
        return slash < 0 ? "" : clean.substring(0, slash);
    }

    static String base(String clean) {
        return clean.substring(clean.lastIndexOf('/') + 1);
    }
}
