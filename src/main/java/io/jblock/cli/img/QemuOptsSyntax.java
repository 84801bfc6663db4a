package io.jblock.cli.img;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * How QEMU's QemuOpts splits an option string into name/value pairs, which
 * both {@code -o} and {@code --image-opts} use:
 * <ul>
 *   <li>elements are separated by ',', and ",," in a value is a literal comma;</li>
 *   <li>{@code name=value}: the name ends at the first '=' (or ',');</li>
 *   <li>an element without '=' is, when it comes first and the list has an
 *       implied name ("file" for --image-opts), that option's value;
 *       otherwise a flag: "on", or "off" when it starts with "no" (which is
 *       dropped: {@code nocow} means {@code cow=off}). Where QEMU warns
 *       about such short forms, so does this.</li>
 * </ul>
 */
final class QemuOptsSyntax {
    /** One name=value pair, in the order given. */
    record Element(String name, String value) {
    }

    private QemuOptsSyntax() {
    }

    /**
     * @param implied  the name a first bare element is the value of, or null
     * @param warnings receives the deprecation warning for short-form flags
     *                 (with its second line), or null where QEMU does not warn
     */
    static List<Element> split(String text, String implied, Consumer<String> warnings) {
        List<Element> out = new ArrayList<>();
        int i = 0;
        int n = text.length();
        boolean first = true;
        while (i < n) {
            int nameEnd = i;
            while (nameEnd < n && text.charAt(nameEnd) != '=' && text.charAt(nameEnd) != ',') {
                nameEnd++;
            }
            if (nameEnd < n && text.charAt(nameEnd) == '=') {
                String name = text.substring(i, nameEnd);
                StringBuilder v = new StringBuilder();
                i = readValue(text, nameEnd + 1, v);
                out.add(new Element(name, v.toString()));
            } else if (first && implied != null) {
                StringBuilder v = new StringBuilder();
                i = readValue(text, i, v);
                out.add(new Element(implied, v.toString()));
            } else {
                String name = text.substring(i, nameEnd);
                i = nameEnd;
                String prefix = "";
                String value = "on";
                if (name.startsWith("no")) {
                    prefix = "no";
                    name = name.substring(2);
                    value = "off";
                }
                boolean help = value.equals("on") && (name.equals("help") || name.equals("?"));
                if (warnings != null && !help) {
                    warnings.accept("short-form boolean option '" + prefix + name + "' deprecated\n"
                            + "Please use " + name + "=" + value + " instead");
                }
                out.add(new Element(name, value));
            }
            if (i < n && text.charAt(i) == ',') {
                i++;
            }
            first = false;
        }
        return out;
    }

    /** Reads a value up to a single ',' (",," is a literal comma); returns where it stopped. */
    static int readValue(String text, int i, StringBuilder out) {
        int n = text.length();
        while (i < n) {
            char c = text.charAt(i);
            if (c == ',') {
                if (i + 1 < n && text.charAt(i + 1) == ',') {
                    out.append(',');
                    i += 2;
                    continue;
                }
                break;
            }
            out.append(c);
            i++;
        }
        return i;
    }
}
