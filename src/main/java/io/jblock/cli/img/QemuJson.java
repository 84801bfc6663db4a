package io.jblock.cli.img;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * JSON as QEMU's pretty printer writes it ({@code qobject_to_json_pretty}),
 * to the byte: four spaces per level, {@code "key": value}, one member per
 * line, and an empty object or array still broken over two lines.
 *
 * <h2>Member order</h2>
 * QEMU keeps objects in a hash table (QDict) of 512 buckets and prints them
 * bucket by bucket, the newest member first within a bucket; so the order is
 * neither alphabetical nor the order of the schema. It is reproduced by
 * hashing each key with the same function (the TDB hash):
 * <pre>
 *   h = 0x238F13AF * length(key)
 *   for each byte b at index i:  h = h + (b << (i * 5 % 24))
 *   bucket = (1103515243 * h + 12345) mod 2^32 mod 512
 * </pre>
 * Members are to be put in {@link Map}s in the order QEMU adds them (the
 * QAPI schema's order), which decides ties within a bucket.
 *
 * <h2>Strings</h2>
 * {@code "} and {@code \} are escaped, \b \f \n \r \t by name, other control
 * characters and everything from 0x7F up as {@code \\uXXXX} in upper-case
 * hex (characters outside the BMP as a surrogate pair).
 */
final class QemuJson {
    private static final int BUCKETS = 512;

    private QemuJson() {
    }

    /** The pretty text of a value: Map, List, String, Long/Integer, Boolean. No trailing newline. */
    static String pretty(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, 0);
        return sb.toString();
    }

    /** The one-line form QEMU uses in json: file names: {"key": value, "key": value}. */
    static String compact(Object value) {
        StringBuilder sb = new StringBuilder();
        writeCompact(sb, value);
        return sb.toString();
    }

    private static void writeCompact(StringBuilder sb, Object v) {
        switch (v) {
            case Map<?, ?> m -> {
                sb.append('{');
                String sep = "";
                for (Map.Entry<?, ?> e : qdictOrder(m)) {
                    sb.append(sep);
                    string(sb, (String) e.getKey());
                    sb.append(": ");
                    writeCompact(sb, e.getValue());
                    sep = ", ";
                }
                sb.append('}');
            }
            case List<?> l -> {
                sb.append('[');
                String sep = "";
                for (Object o : l) {
                    sb.append(sep);
                    writeCompact(sb, o);
                    sep = ", ";
                }
                sb.append(']');
            }
            default -> write(sb, v, 0);
        }
    }

    private static void write(StringBuilder sb, Object v, int level) {
        switch (v) {
            case Map<?, ?> m -> {
                sb.append('{');
                String sep = "";
                for (Map.Entry<?, ?> e : qdictOrder(m)) {
                    sb.append(sep);
                    newline(sb, level + 1);
                    string(sb, (String) e.getKey());
                    sb.append(": ");
                    write(sb, e.getValue(), level + 1);
                    sep = ",";
                }
                newline(sb, level);
                sb.append('}');
            }
            case List<?> l -> {
                sb.append('[');
                String sep = "";
                for (Object o : l) {
                    sb.append(sep);
                    newline(sb, level + 1);
                    write(sb, o, level + 1);
                    sep = ",";
                }
                newline(sb, level);
                sb.append(']');
            }
            case String s -> string(sb, s);
            case Boolean b -> sb.append(b ? "true" : "false");
            case Long n -> sb.append(n);
            case Integer n -> sb.append(n);
            default -> throw new IllegalArgumentException("not a JSON value QEMU prints: " + v.getClass());
        }
    }

    private static void newline(StringBuilder sb, int level) {
        sb.append('\n').append("    ".repeat(level));
    }

    /** Members in QDict order: by bucket, and within a bucket the last added first. */
    static List<Map.Entry<?, ?>> qdictOrder(Map<?, ?> m) {
        List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
        List<Map.Entry<?, ?>> reversed = new ArrayList<>(entries.reversed());
        reversed.sort(Comparator.comparingInt(e -> bucket((String) e.getKey())));
        return reversed;
    }

    /** The QDict bucket of a key; see the class comment. */
    static int bucket(String key) {
        byte[] b = key.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int h = 0x238F13AF * b.length;
        for (int i = 0; i < b.length; i++) {
            h += (b[i] & 0xFF) << (i * 5 % 24);
        }
        return Integer.remainderUnsigned(1103515243 * h + 12345, BUCKETS);
    }

    private static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20 || c >= 0x7F) {
                        sb.append(String.format("\\u%04X", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
