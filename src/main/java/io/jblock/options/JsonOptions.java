package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code json:{...}} file names and JSON option trees, flattened to dotted
 * keys ({@code {"file":{"driver":"file"}}} becomes {@code file.driver=file}),
 * as QEMU flattens its QDicts before bdrv_open reads them.
 *
 * <p>The JSON is read as QEMU's own parser reads it (qobject/json-lexer.c,
 * json-parser.c), because its errors are part of the contract: strings may
 * use single quotes; a duplicate key is an error; and every error reads as
 * QEMU's: {@code Could not parse the JSON options: JSON parse error, premature EOI}.
 *
 * <p>Values become the text QEMU's option code sees: booleans on/off,
 * integers in decimal, other numbers as C's {@code %.17g}; null and empty
 * objects or arrays stay as keys with no text (a driver that does not take
 * them refuses them by name).
 */
public final class JsonOptions {
    /** QEMU's MAX_NESTING: deeper documents are refused before they can exhaust the stack. */
    private static final int MAX_NESTING = 1024;
    private static final String PREFIX = "Could not parse the JSON options: ";

    private JsonOptions() {
    }

    public static boolean isJson(String filename) {
        return filename != null && filename.startsWith("json:");
    }

    /** Parses the text after "json:" (or a plain JSON object) into dotted keys. */
    public static LinkedHashMap<String, String> parse(String text) throws BlockException {
        String body = text.startsWith("json:") ? text.substring(5) : text;
        Object root = new Reader(body).document();
        if (!(root instanceof Map)) {
            throw new BlockException(Errno.EINVAL, "Invalid JSON object given");
        }
        LinkedHashMap<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) root).entrySet()) {
            flatten(e.getKey() + ".", e.getValue(), out);
        }
        return out;
    }

    private static void flatten(String prefix, Object node, Map<String, String> out) {
        if (node instanceof Map<?, ?> m && !m.isEmpty()) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                flatten(prefix + e.getKey() + ".", e.getValue(), out);
            }
        } else if (node instanceof List<?> l && !l.isEmpty()) {
            for (int i = 0; i < l.size(); i++) {
                flatten(prefix + i + ".", l.get(i), out);
            }
        } else {
            String key = prefix.substring(0, prefix.length() - 1);
            out.put(key, switch (node) {
                case String text -> text;
                case Boolean b -> b ? "on" : "off";
                case Num num -> num.text();
                case null, default -> null;
            });
        }
    }

    /** A JSON number, as the text QEMU's option code would print for it. */
    private record Num(String text) {
    }

    /** A JSON null, kept apart from Java's null so "absent" and "null" differ while parsing. */
    private static final Object NULL = new Object();

    /** A recursive-descent reader with QEMU's error texts. */
    private static final class Reader {
        private final String s;
        private int p;
        private int depth;

        Reader(String s) {
            this.s = s;
        }

        Object document() throws BlockException {
            skipSpace();
            if (p >= s.length()) {
                throw new BlockException(Errno.EINVAL, PREFIX + "Expecting a JSON value");
            }
            Object v = value();
            skipSpace();
            if (p < s.length()) {
                throw new BlockException(Errno.EINVAL, PREFIX + "Expecting at most one JSON value");
            }
            return v == NULL ? null : v;
        }

        private BlockException error(String what) {
            return new BlockException(Errno.EINVAL, PREFIX + "JSON parse error, " + what);
        }

        private void skipSpace() {
            while (p < s.length()) {
                char c = s.charAt(p);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                    p++;
                } else {
                    break;
                }
            }
        }

        private Object value() throws BlockException {
            skipSpace();
            if (p >= s.length()) {
                throw error("premature EOI");
            }
            char c = s.charAt(p);
            return switch (c) {
                case '{' -> object();
                case '[' -> array();
                case '"', '\'' -> string();
                case '}', ']', ',', ':' -> throw error("expecting value");
                default -> {
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        yield number();
                    }
                    if (Character.isLetter(c)) {
                        yield keyword();
                    }
                    throw error("stray '" + s.substring(p, p + 1) + "'");
                }
            };
        }

        private Object object() throws BlockException {
            enter();
            p++;
            LinkedHashMap<String, Object> m = new LinkedHashMap<>();
            skipSpace();
            if (p < s.length() && s.charAt(p) == '}') {
                p++;
                depth--;
                return m;
            }
            while (true) {
                Object key = value();
                if (!(key instanceof String k)) {
                    throw error("key is not a string in object");
                }
                skipSpace();
                if (p >= s.length()) {
                    throw error("premature EOI");
                }
                if (s.charAt(p) != ':') {
                    throw error("missing : in object pair");
                }
                p++;
                Object v = value();
                if (m.containsKey(k)) {
                    throw error("duplicate key");
                }
                m.put(k, v == NULL ? null : v);
                skipSpace();
                if (p >= s.length()) {
                    throw error("premature EOI");
                }
                char c = s.charAt(p++);
                if (c == '}') {
                    depth--;
                    return m;
                }
                if (c != ',') {
                    throw error("expected separator in dict");
                }
            }
        }

        private Object array() throws BlockException {
            enter();
            p++;
            List<Object> l = new ArrayList<>();
            skipSpace();
            if (p < s.length() && s.charAt(p) == ']') {
                p++;
                depth--;
                return l;
            }
            while (true) {
                Object v = value();
                l.add(v == NULL ? null : v);
                skipSpace();
                if (p >= s.length()) {
                    throw error("premature EOI");
                }
                char c = s.charAt(p++);
                if (c == ']') {
                    depth--;
                    return l;
                }
                if (c != ',') {
                    throw error("expected separator in list");
                }
            }
        }

        private void enter() throws BlockException {
            if (++depth > MAX_NESTING) {
                throw new BlockException(Errno.EINVAL, PREFIX + "JSON nesting depth limit exceeded");
            }
        }

        private String string() throws BlockException {
            char quote = s.charAt(p++);
            StringBuilder b = new StringBuilder();
            while (true) {
                if (p >= s.length()) {
                    throw error("premature EOI");
                }
                char c = s.charAt(p++);
                if (c == quote) {
                    return b.toString();
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (p >= s.length()) {
                    throw error("premature EOI");
                }
                char e = s.charAt(p++);
                switch (e) {
                    case '"' -> b.append('"');
                    case '\'' -> b.append('\'');
                    case '\\' -> b.append('\\');
                    case '/' -> b.append('/');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'n' -> b.append('\n');
                    case 'r' -> b.append('\r');
                    case 't' -> b.append('\t');
                    case 'u' -> {
                        if (p + 4 > s.length()) {
                            throw error("invalid hex escape sequence in string");
                        }
                        int cp;
                        try {
                            cp = Integer.parseInt(s.substring(p, p + 4), 16);
                        } catch (NumberFormatException bad) {
                            throw error("invalid hex escape sequence in string");
                        }
                        if (cp == 0) {
                            throw error("\\u0000 is not supported");
                        }
                        p += 4;
                        b.append((char) cp);
                    }
                    default -> throw error("invalid escape sequence in string");
                }
            }
        }

        /** Numbers as QEMU's lexer takes them: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. */
        private Num number() throws BlockException {
            int start = p;
            if (s.charAt(p) == '-') {
                p++;
            }
            if (p >= s.length()) {
                throw error("premature EOI");
            }
            char c = s.charAt(p);
            if (c == '0') {
                p++;
            } else if (c >= '1' && c <= '9') {
                while (p < s.length() && Character.isDigit(s.charAt(p))) {
                    p++;
                }
            } else {
                throw stray(start);
            }
            boolean integer = true;
            if (p < s.length() && s.charAt(p) == '.') {
                integer = false;
                p++;
                if (p >= s.length() || !Character.isDigit(s.charAt(p))) {
                    throw stray(start);
                }
                while (p < s.length() && Character.isDigit(s.charAt(p))) {
                    p++;
                }
            }
            if (p < s.length() && (s.charAt(p) == 'e' || s.charAt(p) == 'E')) {
                integer = false;
                p++;
                if (p < s.length() && (s.charAt(p) == '+' || s.charAt(p) == '-')) {
                    p++;
                }
                if (p >= s.length() || !Character.isDigit(s.charAt(p))) {
                    throw stray(start);
                }
                while (p < s.length() && Character.isDigit(s.charAt(p))) {
                    p++;
                }
            }
            if (p < s.length() && (Character.isDigit(s.charAt(p)) || Character.isLetter(s.charAt(p)))) {
                throw stray(start); // "01", "1x": the lexer fails on the character after the number
            }
            String text = s.substring(start, p);
            if (integer) {
                BigInteger v = new BigInteger(text);
                if (v.bitLength() <= 64) { // int64 or uint64, printed as such
                    return new Num(v.toString());
                }
            }
            return new Num(printG17(Double.parseDouble(text)));
        }

        private BlockException stray(int start) {
            int end = Math.min(p + 1, s.length());
            return error("stray '" + s.substring(start, end) + "'");
        }

        private Object keyword() throws BlockException {
            int start = p;
            while (p < s.length() && Character.isLetterOrDigit(s.charAt(p))) {
                p++;
            }
            String word = s.substring(start, p);
            return switch (word) {
                case "true" -> Boolean.TRUE;
                case "false" -> Boolean.FALSE;
                case "null" -> NULL;
                default -> throw error("invalid keyword '" + word + "'");
            };
        }
    }

    /** C's printf("%.17g"), which QEMU uses to turn a JSON float into option text. */
    static String printG17(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            return Double.toString(d).toLowerCase();
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0" : "0";
        }
        BigDecimal v = new BigDecimal(d).round(new MathContext(17));
        int exponent = v.precision() - v.scale() - 1;
        if (exponent < -4 || exponent >= 17) {
            BigDecimal mantissa = v.movePointLeft(exponent).stripTrailingZeros();
            String m = mantissa.toPlainString();
            String e = String.format("%s%02d", exponent < 0 ? "-" : "+", Math.abs(exponent));
            return m + "e" + e;
        }
        return v.stripTrailingZeros().toPlainString();
    }
}
