package dev.starling.estargz;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads and writes the TOC JSON. Reading streams tokens (no tree, no reflection) and accepts any
 * valid JSON; writing matches Go's {@code json.MarshalIndent(toc, "", "\t")} layout, field order and
 * omit-empty rules, so our TOCs look like the reference converter's.
 */
public final class TocJson {
    private static final JsonFactory JSON = JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(8) // a TOC is three levels deep; deeper is hostile
                    .maxStringLength(1 << 20)
                    .maxNumberLength(32)
                    .build())
            .build();

    private TocJson() {
    }

    /** Parses TOC JSON; every problem becomes an {@link InvalidBlobException} naming the entry. */
    public static List<TocEntry> parse(byte[] json) throws InvalidBlobException {
        return parse(new java.io.ByteArrayInputStream(json), ReaderLimits.DEFAULT);
    }

    /** Parses TOC JSON as it is read, refusing more than {@link ReaderLimits#maxEntries} entries. */
    public static List<TocEntry> parse(java.io.InputStream json, ReaderLimits limits) throws InvalidBlobException {
        try (JsonParser p = JSON.createParser(json)) {
            expect(p.nextToken(), JsonToken.START_OBJECT, "the TOC");
            List<TocEntry> entries = null;
            boolean sawVersion = false;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                switch (field) {
                    case "version" -> {
                        if (value != JsonToken.VALUE_NUMBER_INT) {
                            throw new InvalidBlobException("TOC version is not an integer");
                        }
                        sawVersion = true;
                    }
                    case "entries" -> {
                        expect(value, JsonToken.START_ARRAY, "TOC entries");
                        entries = new ArrayList<>();
                        while (p.nextToken() == JsonToken.START_OBJECT) {
                            if (entries.size() == limits.maxEntries()) {
                                throw new InvalidBlobException("TOC has more than " + limits.maxEntries()
                                        + " entries, the limit that bounds a layer's index in memory");
                            }
                            entries.add(parseEntry(p, entries.size()));
                        }
                        expect(p.currentToken(), JsonToken.END_ARRAY, "end of TOC entries");
                    }
                    default -> p.skipChildren();
                }
            }
            expect(p.currentToken(), JsonToken.END_OBJECT, "end of the TOC");
            if (p.nextToken() != null) {
                throw new InvalidBlobException("trailing data after the TOC JSON");
            }
            if (entries == null) {
                if (!sawVersion) {
                    throw new InvalidBlobException("TOC JSON has neither version nor entries");
                }
                entries = List.of();
            }
            return entries;
        } catch (JsonProcessingException e) {
            throw new InvalidBlobException("TOC is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (InvalidBlobException e) {
            throw e;
        } catch (IOException e) {
            throw new InvalidBlobException("cannot parse TOC: " + e.getMessage(), e);
        }
    }

    private static TocEntry parseEntry(JsonParser p, int index) throws IOException {
        String name = null;
        EntryType type = null;
        long size = 0, mode = 0, offset = 0, innerOffset = 0, chunkOffset = 0, chunkSize = 0, modTime = 0;
        int uid = 0, gid = 0, devMajor = 0, devMinor = 0;
        String linkName = "", userName = "", groupName = "", digest = "", chunkDigest = "";
        Map<String, byte[]> xattrs = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            String where = "TOC entry #" + index + (name == null ? "" : " (" + Digests.quote(name) + ")");
            switch (field) {
                case "name" -> name = text(p, value, where, field);
                case "type" -> type = EntryType.fromJson(text(p, value, where, field));
                case "size" -> size = nonNegative(p, value, where, field);
                case "modtime" -> modTime = parseTime(text(p, value, where, field), where);
                case "linkName" -> linkName = text(p, value, where, field);
                case "mode" -> mode = nonNegative(p, value, where, field);
                case "uid" -> uid = toInt(nonNegative(p, value, where, field), where, field);
                case "gid" -> gid = toInt(nonNegative(p, value, where, field), where, field);
                case "userName" -> userName = text(p, value, where, field);
                case "groupName" -> groupName = text(p, value, where, field);
                case "offset" -> offset = nonNegative(p, value, where, field);
                case "innerOffset" -> innerOffset = nonNegative(p, value, where, field);
                case "devMajor" -> devMajor = toInt(nonNegative(p, value, where, field), where, field);
                case "devMinor" -> devMinor = toInt(nonNegative(p, value, where, field), where, field);
                case "digest" -> digest = text(p, value, where, field);
                case "chunkOffset" -> chunkOffset = nonNegative(p, value, where, field);
                case "chunkSize" -> chunkSize = nonNegative(p, value, where, field);
                case "chunkDigest" -> chunkDigest = text(p, value, where, field);
                case "xattrs" -> xattrs = parseXattrs(p, value, where);
                default -> p.skipChildren(); // NumLink, and fields of other producers
            }
        }
        String where = "TOC entry #" + index;
        if (name == null) {
            throw new InvalidBlobException(where + " has no name");
        }
        if (type == null) {
            throw new InvalidBlobException(where + " (" + Digests.quote(name) + ") has no type");
        }
        return new TocEntry(name, type, size, modTime, linkName, mode, uid, gid, userName, groupName, offset,
                innerOffset, devMajor, devMinor, xattrs, digest, chunkOffset, chunkSize, chunkDigest);
    }

    private static Map<String, byte[]> parseXattrs(JsonParser p, JsonToken value, String where) throws IOException {
        if (value == JsonToken.VALUE_NULL) {
            return null;
        }
        expect(value, JsonToken.START_OBJECT, where + " xattrs");
        Map<String, byte[]> xattrs = new TreeMap<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            String encoded = text(p, p.nextToken(), where, "xattr " + key);
            try {
                xattrs.put(key, Base64.getDecoder().decode(encoded));
            } catch (IllegalArgumentException e) {
                throw new InvalidBlobException(where + ": xattr " + Digests.quote(key) + " is not base64");
            }
        }
        return xattrs;
    }

    private static String text(JsonParser p, JsonToken value, String where, String field) throws IOException {
        if (value == JsonToken.VALUE_NULL) {
            return "";
        }
        if (value != JsonToken.VALUE_STRING) {
            throw new InvalidBlobException(where + ": " + field + " is not a string");
        }
        return p.getText();
    }

    private static long nonNegative(JsonParser p, JsonToken value, String where, String field) throws IOException {
        if (value != JsonToken.VALUE_NUMBER_INT) {
            throw new InvalidBlobException(where + ": " + field + " is not an integer");
        }
        if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
            throw new InvalidBlobException(where + ": " + field + " is out of range");
        }
        long v = p.getLongValue();
        if (v < 0) {
            throw new InvalidBlobException(where + ": " + field + " is negative (" + v + ")");
        }
        return v;
    }

    private static int toInt(long v, String where, String field) throws InvalidBlobException {
        if (v > Integer.MAX_VALUE) {
            throw new InvalidBlobException(where + ": " + field + " is out of range (" + v + ")");
        }
        return (int) v;
    }

    private static long parseTime(String text, String where) throws InvalidBlobException {
        if (text.isEmpty()) {
            return 0;
        }
        try {
            return OffsetDateTime.parse(text, DateTimeFormatter.ISO_OFFSET_DATE_TIME).toEpochSecond();
        } catch (DateTimeParseException e) {
            throw new InvalidBlobException(where + ": modtime " + Digests.quote(text) + " is not RFC 3339");
        }
    }

    private static void expect(JsonToken actual, JsonToken expected, String what) throws InvalidBlobException {
        if (actual != expected) {
            throw new InvalidBlobException(what + ": expected " + expected.asString() + " but found "
                    + (actual == null ? "end of input" : actual.asString() == null ? actual.name() : actual.asString()));
        }
    }

    /** Serialises entries as the reference writer does (tab indent, Go field order, omit empty). */
    public static byte[] write(List<TocEntry> entries) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256 + entries.size() * 256);
        try (JsonGenerator g = JSON.createGenerator(out, JsonEncoding.UTF8)) {
            g.setPrettyPrinter(goIndent());
            g.writeStartObject();
            g.writeNumberField("version", 1);
            g.writeArrayFieldStart("entries");
            for (TocEntry e : entries) {
                writeEntry(g, e);
            }
            g.writeEndArray();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException("writing to memory cannot fail", e);
        }
        return out.toByteArray();
    }

    private static void writeEntry(JsonGenerator g, TocEntry e) throws IOException {
        g.writeStartObject();
        g.writeStringField("name", e.name());
        g.writeStringField("type", e.type().json);
        writeLong(g, "size", e.size());
        if (e.modTime() != 0) {
            g.writeStringField("modtime", formatTime(e.modTime()));
        }
        writeString(g, "linkName", e.linkName());
        writeLong(g, "mode", e.mode());
        writeLong(g, "uid", e.uid());
        writeLong(g, "gid", e.gid());
        writeString(g, "userName", e.userName());
        writeString(g, "groupName", e.groupName());
        writeLong(g, "offset", e.offset());
        writeLong(g, "innerOffset", e.innerOffset());
        writeLong(g, "devMajor", e.devMajor());
        writeLong(g, "devMinor", e.devMinor());
        if (!e.xattrs().isEmpty()) {
            g.writeObjectFieldStart("xattrs");
            for (Map.Entry<String, byte[]> x : new TreeMap<>(e.xattrs()).entrySet()) {
                g.writeStringField(x.getKey(), Base64.getEncoder().encodeToString(x.getValue()));
            }
            g.writeEndObject();
        }
        writeString(g, "digest", e.digest());
        writeLong(g, "chunkOffset", e.chunkOffset());
        writeLong(g, "chunkSize", e.chunkSize());
        writeString(g, "chunkDigest", e.chunkDigest());
        g.writeEndObject();
    }

    static String formatTime(long epochSeconds) {
        return DateTimeFormatter.ISO_OFFSET_DATE_TIME.format(
                Instant.ofEpochSecond(epochSeconds).truncatedTo(ChronoUnit.SECONDS).atOffset(ZoneOffset.UTC))
                .replace("+00:00", "Z");
    }

    private static void writeLong(JsonGenerator g, String field, long value) throws IOException {
        if (value != 0) {
            g.writeNumberField(field, value);
        }
    }

    private static void writeString(JsonGenerator g, String field, String value) throws IOException {
        if (!value.isEmpty()) {
            g.writeStringField(field, value);
        }
    }

    /** Go's MarshalIndent with a tab: {@code "key": value}, one tab per level, {@code []} when empty. */
    private static DefaultPrettyPrinter goIndent() {
        DefaultIndenter tabs = new DefaultIndenter("\t", "\n");
        DefaultPrettyPrinter printer = new DefaultPrettyPrinter().withSeparators(Separators.createDefaultInstance()
                .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                .withArrayEmptySeparator("")
                .withObjectEmptySeparator(""));
        printer.indentObjectsWith(tabs);
        printer.indentArraysWith(tabs);
        return printer;
    }
}
