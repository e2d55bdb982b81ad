package dev.starling.snapshot;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * One filter of containerd's filter syntax, as `ctr snapshots ls` and the CRI plugin send them:
 * clauses joined by commas (all must hold), each a field ({@code name}, {@code parent},
 * {@code kind}, {@code labels.KEY} or {@code labels."KEY"}) alone (present) or with {@code ==},
 * {@code !=} or {@code ~=} (a regular expression) and a value, quoted or not.
 */
record SnapshotFilter(List<Clause> clauses) {
    record Clause(String field, String op, String value, Pattern regex) {
        boolean matches(Snapshot s) {
            String actual = switch (field) {
                case "name" -> s.key();
                case "parent" -> s.parent();
                case "kind" -> s.kind().name().toLowerCase();
                default -> s.labels().get(field.substring("labels.".length()));
            };
            return switch (op) {
                case "" -> actual != null && !actual.isEmpty();
                case "==" -> value.equals(actual);
                case "!=" -> !value.equals(actual);
                default -> actual != null && regex.matcher(actual).find();
            };
        }
    }

    boolean matches(Snapshot s) {
        return clauses.stream().allMatch(c -> c.matches(s));
    }

    static SnapshotFilter parse(String text) throws SnapshotException.InvalidArgument {
        List<Clause> clauses = new ArrayList<>();
        int i = 0;
        while (i < text.length()) {
            StringBuilder field = new StringBuilder();
            i = skipSpaces(text, i);
            while (i < text.length() && "=!~,".indexOf(text.charAt(i)) < 0) {
                if (text.charAt(i) == '"') {
                    int[] end = new int[1];
                    field.append(quoted(text, i, end));
                    i = end[0];
                } else {
                    field.append(text.charAt(i++));
                }
            }
            String name = field.toString().strip();
            if (!name.equals("name") && !name.equals("parent") && !name.equals("kind")
                    && !(name.startsWith("labels.") && name.length() > "labels.".length())) {
                throw new SnapshotException.InvalidArgument("filter \"" + text + "\": unknown field \"" + name
                        + "\" (name, parent, kind, labels.KEY)");
            }
            String op = "";
            String value = "";
            if (i < text.length() && text.charAt(i) != ',') {
                if (i + 1 >= text.length() || text.charAt(i + 1) != '=') {
                    throw new SnapshotException.InvalidArgument("filter \"" + text + "\": expected ==, != or ~= at " + i);
                }
                op = text.substring(i, i + 2);
                i = skipSpaces(text, i + 2);
                StringBuilder v = new StringBuilder();
                if (i < text.length() && text.charAt(i) == '"') {
                    int[] end = new int[1];
                    v.append(quoted(text, i, end));
                    i = end[0];
                } else {
                    while (i < text.length() && text.charAt(i) != ',') {
                        v.append(text.charAt(i++));
                    }
                }
                value = v.toString().strip();
            }
            Pattern regex = null;
            if (op.equals("~=")) {
                try {
                    regex = Pattern.compile(value);
                } catch (PatternSyntaxException e) {
                    throw new SnapshotException.InvalidArgument("filter \"" + text + "\": " + e.getDescription());
                }
            }
            clauses.add(new Clause(name, op, value, regex));
            i = skipSpaces(text, i);
            if (i < text.length()) {
                if (text.charAt(i) != ',') {
                    throw new SnapshotException.InvalidArgument("filter \"" + text + "\": expected , at " + i);
                }
                i++;
            }
        }
        return new SnapshotFilter(clauses);
    }

    private static int skipSpaces(String text, int i) {
        while (i < text.length() && text.charAt(i) == ' ') {
            i++;
        }
        return i;
    }

    private static String quoted(String text, int start, int[] end) throws SnapshotException.InvalidArgument {
        StringBuilder out = new StringBuilder();
        for (int i = start + 1; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\\' && i + 1 < text.length()) {
                out.append(text.charAt(++i));
            } else if (c == '"') {
                end[0] = i + 1;
                return out.toString();
            } else {
                out.append(c);
            }
        }
        throw new SnapshotException.InvalidArgument("filter \"" + text + "\": unterminated quote");
    }
}
