package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
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

    /** One {@code name=value} element, in the order given; a flag is already turned into "on" or "off". */
    public record Element(String name, String value) {
    }

    /** Parses without reporting deprecation warnings. */
    public static LinkedHashMap<String, String> parse(String text, String impliedKey) throws BlockException {
        return parse(text, impliedKey, w -> { });
    }

    /**
     * Parses {@code text} as QemuOpts does for {@code -drive} and
     * {@code --image-opts}: a later value for a key replaces the earlier one,
     * and the first {@code id} is the options' id, checked and put first.
     * {@code warnings} receives QEMU's warning for each short-form boolean
     * ({@code "short-form boolean option 'foo' deprecated\nPlease use foo=on instead"}).
     */
    public static LinkedHashMap<String, String> parse(String text, String impliedKey, Consumer<String> warnings)
            throws BlockException {
        LinkedHashMap<String, String> out = new LinkedHashMap<>();
        String id = null;
        for (Element e : elements(text, impliedKey, warnings)) {
            if (!e.name().equals("id")) {
                out.put(e.name(), e.value());
            } else if (id == null) {
                id = e.value();
            }
        }
        if (id == null) {
            return out;
        }
        if (!isIdentifier(id)) {
            throw new BlockException(Errno.EINVAL, "Parameter 'id' expects an identifier\n" + ID_HINT);
        }
        LinkedHashMap<String, String> withId = new LinkedHashMap<>();
        withId.put("id", id);
        withId.putAll(out);
        return withId;
    }

    /**
     * The syntax alone: every element in order, repeated keys and {@code id}
     * included, for callers that give them their own meaning (qemu-img's
     * {@code -o} checks each element as it comes and ignores {@code id}).
     *
     * @param impliedKey the key a first bare element is the value of, or null
     * @param warnings   receives the short-form boolean warning, or null
     *                   where QEMU parses without it (qemu_opts_do_parse,
     *                   as qemu-img's {@code -o})
     */
    public static List<Element> elements(String text, String impliedKey, Consumer<String> warnings) {
        List<Element> out = new ArrayList<>();
        int p = 0;
        int n = text.length();
        String firstName = impliedKey;
        while (p < n) {
            int len = nameLength(text, p);
            boolean bare = p + len >= n || text.charAt(p + len) != '=';
            if (bare && firstName != null) {
                StringBuilder v = new StringBuilder();
                p = readValue(text, p, v);
                out.add(new Element(firstName, v.toString()));
            } else if (bare) {
                out.add(flag(text.substring(p, p + len), warnings));
                p += len;
            } else {
                StringBuilder v = new StringBuilder();
                String name = text.substring(p, p + len);
                p = readValue(text, p + len + 1, v);
                out.add(new Element(name, v.toString()));
            }
            if (p < n) {
                p++; // the separating comma
            }
            firstName = null;
        }
        return out;
    }

    /**
     * {@code foo} is {@code foo=on}, {@code nofoo} is {@code foo=off}. QEMU
     * warns about both short forms except a bare {@code help} or {@code ?}
     * ({@code nohelp} is warned about, as qemu-img does).
     */
    private static Element flag(String word, Consumer<String> warnings) {
        boolean negated = word.startsWith("no");
        String name = negated ? word.substring(2) : word;
        String value = negated ? "off" : "on";
        if (warnings != null && (negated || !isHelp(name))) {
            warnings.accept("short-form boolean option '" + word + "' deprecated\n"
                    + "Please use " + name + "=" + value + " instead");
        }
        return new Element(name, value);
    }

    /**
     * QEMU's has_help_option: whether any value of the list, split at single
     * commas only (so {@code a,,help} is the one value "a,help"), is
     * {@code help} or {@code ?}. A {@code help=1} does not count.
     */
    public static boolean hasHelpOption(String text) {
        int p = 0;
        int n = text.length();
        while (p < n) {
            StringBuilder v = new StringBuilder();
            p = readValue(text, p, v);
            if (p < n) {
                p++;
            }
            if (isHelp(v.toString())) {
                return true;
            }
        }
        return false;
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
