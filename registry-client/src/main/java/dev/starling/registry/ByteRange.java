package dev.starling.registry;

/** {@code length} bytes of a blob at {@code offset}. */
public record ByteRange(long offset, int length) implements Comparable<ByteRange> {
    public ByteRange {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("bad range " + offset + "+" + length);
        }
    }

    public long end() {
        return offset + length;
    }

    /** The HTTP form, inclusive: {@code a-b}. */
    String http() {
        return offset + "-" + (end() - 1);
    }

    @Override
    public int compareTo(ByteRange o) {
        return offset != o.offset ? Long.compare(offset, o.offset) : Integer.compare(length, o.length);
    }
}
