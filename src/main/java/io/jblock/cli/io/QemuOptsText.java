package io.jblock.cli.io;

import java.util.LinkedHashMap;
import java.util.function.Consumer;

/**
 * Option strings as QEMU's QemuOpts parses them for {@code --image-opts}
 * and {@code open -o}: {@code key=value} separated by commas, {@code ,,} a
 * literal comma, and a bare {@code key} (or {@code nokey}) as the deprecated
 * short form of {@code key=on} ({@code key=off}), which QEMU warns about.
 */
final class QemuOptsText {
    private QemuOptsText() {
    }

    /**
     * {@code open -o} and {@code reopen -o}: options merged over several
     * {@code -o}, where {@code id} is refused (QemuOpts keeps it apart and
     * these lists take none). False after printing the error.
     */
    static boolean parseMerged(IoSession s, String text, LinkedHashMap<String, String> into) {
        LinkedHashMap<String, String> these = new LinkedHashMap<>();
        parse(text, these, s::warn);
        if (these.containsKey("id")) {
            s.error("Invalid parameter 'id'");
            return false;
        }
        into.putAll(these);
        return true;
    }

    /** Adds the pairs of {@code text} to {@code into}, later keys replacing earlier ones. */
    static void parse(String text, LinkedHashMap<String, String> into, Consumer<String> warn) {
        int i = 0;
        int n = text.length();
        while (i < n) {
            StringBuilder key = new StringBuilder();
            while (i < n && text.charAt(i) != '=' && text.charAt(i) != ',') {
                key.append(text.charAt(i++));
            }
            if (i < n && text.charAt(i) == '=') {
                i++;
                StringBuilder value = new StringBuilder();
                while (i < n) {
                    char c = text.charAt(i);
                    if (c == ',') {
                        if (i + 1 < n && text.charAt(i + 1) == ',') {
                            value.append(',');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    value.append(c);
                    i++;
                }
                into.put(key.toString(), value.toString());
            } else {
                String k = key.toString();
                String v = "on";
                if (k.startsWith("no") && !k.isEmpty()) {
                    k = k.substring(2);
                    v = "off";
                }
                warn.accept("short-form boolean option '" + k + "' deprecated\nPlease use " + k + "=" + v
                        + " instead");
                into.put(k, v);
            }
            i++; // the separating comma
        }
    }
}
