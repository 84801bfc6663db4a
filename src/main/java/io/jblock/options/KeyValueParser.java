package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.util.LinkedHashMap;

/**
 * Parses QEMU's option strings: {@code key=value} pairs separated by
 * {@code ,}, where {@code ,,} is a literal comma. A later value for the same
 * key replaces the earlier one, as QemuOpts does.
 *
 * <p>An element without {@code =} is the value of {@code impliedKey} when
 * it comes first (as {@code -drive} and qemu-img's {@code -o} take a bare
 * file name or help), and otherwise a boolean flag set to "on".
 */
public final class KeyValueParser {
    private KeyValueParser() {
    }

    public static LinkedHashMap<String, String> parse(String text, String impliedKey) throws BlockException {
        LinkedHashMap<String, String> out = new LinkedHashMap<>();
        int i = 0;
        int n = text.length();
        boolean first = true;
        while (i < n) {
            // Read one element up to an unescaped comma, unescaping ",," on the way.
            StringBuilder elem = new StringBuilder();
            int eq = -1;
            while (i < n) {
                char c = text.charAt(i);
                if (c == ',') {
                    if (i + 1 < n && text.charAt(i + 1) == ',') {
                        elem.append(',');
                        i += 2;
                        continue;
                    }
                    break;
                }
                if (c == '=' && eq < 0) {
                    eq = elem.length();
                }
                elem.append(c);
                i++;
            }
            i++; // skip the separating comma
            String e = elem.toString();
            if (eq < 0) {
                if (first && impliedKey != null) {
                    out.put(impliedKey, e);
                } else if (e.isEmpty()) {
                    throw new BlockException(Errno.EINVAL, "Invalid parameter ''");
                } else {
                    out.put(e, "on");
                }
            } else {
                String key = e.substring(0, eq);
                if (key.isEmpty()) {
                    throw new BlockException(Errno.EINVAL, "Invalid parameter ''");
                }
                out.put(key, e.substring(eq + 1));
            }
            first = false;
        }
        return out;
    }

    /** The inverse for one value: commas doubled. */
    public static String escape(String value) {
        return value.replace(",", ",,");
    }
}
