package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.util.LinkedHashMap;
import java.util.function.Consumer;

/**
 * Parses option strings the way QEMU's QemuOpts does (util/qemu-option.c),
 * which is what {@code -drive}, {@code --image-opts}, qemu-io's
 * {@code open -o} and qemu-img's {@code -o} use:
 *
 * <ul>
 *   <li>elements are separated by {@code ,}; in a value {@code ,,} is a
 *       literal comma. A key ends at the first {@code =} or {@code ,}, so a
 *       key cannot hold a comma;</li>
 *   <li>{@code key=value}; an element without {@code =} is the value of the
 *       implied key when it comes first and one is given, otherwise a flag:
 *       {@code foo} means {@code foo=on} and {@code nofoo} means
 *       {@code foo=off}, both with QEMU's deprecation warning;</li>
 *   <li>a later value for a key replaces the earlier one (QemuOpts reads the
 *       last), keeping the key's first position;</li>
 *   <li>{@code id} is special: the first one is the options' id, and it must
 *       be an identifier.</li>
 * </ul>
 *
 * <p>For {@code --blockdev} strings, which follow other rules, see {@link Keyval}.
 */
public final class KeyValueParser {
    /** QEMU's hint after a bad id (qemu_opts_create). */
    static final String ID_HINT = "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.";

    private KeyValueParser() {
    }

    /** Parses without reporting deprecation warnings. */
    public static LinkedHashMap<String, String> parse(String text, String impliedKey) throws BlockException {
        return parse(text, impliedKey, w -> { });
    }

    /**
     * Parses {@code text}; {@code warnings} receives QEMU's warning for each
     * short-form boolean ({@code "short-form boolean option 'foo' deprecated\nPlease use foo=on instead"}).
     */
    public static LinkedHashMap<String, String> parse(String text, String impliedKey, Consumer<String> warnings)
            throws BlockException {
        LinkedHashMap<String, String> out = new LinkedHashMap<>();
        String id = null;
        boolean sawId = false;
        int p = 0;
        int n = text.length();
        String firstName = impliedKey;
        while (p < n) {
            int len = nameLength(text, p);
            String name;
            String value;
            if (p + len >= n || text.charAt(p + len) != '=') {
                if (firstName != null) {
                    name = firstName;
                    StringBuilder v = new StringBuilder();
                    p = readValue(text, p, v);
                    value = v.toString();
                } else {
                    name = text.substring(p, p + len);
                    p += len;
                    String prefix = "";
                    if (name.startsWith("no")) {
                        name = name.substring(2);
                        value = "off";
                        prefix = "no";
                    } else {
                        value = "on";
                    }
                    if (!isHelp(name)) {
                        warnings.accept("short-form boolean option '" + prefix + name + "' deprecated\n"
                                + "Please use " + name + "=" + value + " instead");
                    }
                }
            } else {
                name = text.substring(p, p + len);
                StringBuilder v = new StringBuilder();
                p = readValue(text, p + len + 1, v);
                value = v.toString();
            }
            if (p < n) {
                p++; // the separating comma
            }
            firstName = null;
            if (name.equals("id")) {
                if (!sawId) {
                    id = value;
                    sawId = true;
                }
                continue;
            }
            out.put(name, value);
        }
        if (sawId) {
            if (!isIdentifier(id)) {
                throw new BlockException(Errno.EINVAL, "Parameter 'id' expects an identifier\n" + ID_HINT);
            }
            LinkedHashMap<String, String> withId = new LinkedHashMap<>();
            withId.put("id", id);
            withId.putAll(out);
            return withId;
        }
        return out;
    }

    /** QEMU's id_wellformed: a letter, then letters, digits, '-', '.' or '_'. */
    public static boolean isIdentifier(String id) {
        if (id == null || id.isEmpty() || !isAsciiLetter(id.charAt(0))) {
            return false;
        }
        for (int i = 1; i < id.length(); i++) {
            char c = id.charAt(i);
            if (!isAsciiLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.' && c != '_') {
                return false;
            }
        }
        return true;
    }

    /** The inverse for one value: commas doubled. */
    public static String escape(String value) {
        return value.replace(",", ",,");
    }

    private static boolean isAsciiLetter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    private static boolean isHelp(String name) {
        return name.equals("help") || name.equals("?");
    }

    private static int nameLength(String text, int p) {
        int i = p;
        while (i < text.length() && text.charAt(i) != '=' && text.charAt(i) != ',') {
            i++;
        }
        return i - p;
    }

    /** Reads a value up to a single comma, turning ",," into ","; returns the index of that comma (or the end). */
    private static int readValue(String text, int p, StringBuilder value) {
        int n = text.length();
        while (p < n) {
            char c = text.charAt(p);
            if (c == ',') {
                if (p + 1 < n && text.charAt(p + 1) == ',') {
                    value.append(',');
                    p += 2;
                    continue;
                }
                break;
            }
            value.append(c);
            p++;
        }
        return p;
    }
}
