package io.jblock.cli.img;

import io.jblock.options.KeyValueParser;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;

/**
 * The creation options of a format ({@code -o size=1M,preallocation=full}),
 * parsed as QEMU's QemuOpts parses them, because scripts rely on its quirks:
 * a later value replaces an earlier one, {@code ,,} is a literal comma, a
 * name without {@code =} is a flag set to "on" — or to "off" when it starts
 * with "no" ({@code nonocow} is {@code nocow=off}, and {@code nocow} alone is
 * the unknown option "cow") — and {@code id=} is ignored.
 */
final class CreateOptions {
    enum Type {
        SIZE("<size>"), NUMBER("<num>"), BOOL("<bool (on/off)>"), STRING("<str>");

        private final String shown;

        Type(String shown) {
            this.shown = shown;
        }
    }

    /**
     * One option a format accepts, with qemu's help text for it and the
     * default the "Formatting" line shows when it is not set (null: not shown).
     */
    record Desc(String name, Type type, String help, String shownDefault) {
        Desc(String name, Type type, String help) {
            this(name, type, help, null);
        }
    }

    /** An option failed to parse; the message is qemu's, hint lines included. */
    static final class Invalid extends Exception {
        Invalid(String message) {
            super(message, null, false, false);
        }
    }

    static final Desc SIZE = new Desc("size", Type.SIZE, "Virtual disk size");
    /** The file protocol's options, in the order qemu prints them in the "Formatting" line. */
    static final List<Desc> FILE = List.of(SIZE,
            new Desc("nocow", Type.BOOL, "Turn off copy-on-write (valid only on btrfs)"),
            new Desc("preallocation", Type.STRING, "Preallocation mode (allowed values: off, falloc, full)"),
            new Desc("extent_size_hint", Type.SIZE, "Extent size hint for the image file, 0 to disable"));
    /** The host_device protocol's options (character and block devices: nothing to allocate). */
    static final List<Desc> HOST_DEVICE = List.of(SIZE,
            new Desc("preallocation", Type.STRING, "Preallocation mode (allowed values: off)"));
    /** The raw format's own options; the file protocol's come after them. */
    static final List<Desc> RAW = List.of(SIZE);

    /**
     * qcow2's options, in the order of its "Formatting" line (QEMU's
     * qcow2_create_opts), with the defaults that line shows.
     */
    static final List<Desc> QCOW2 = List.of(
            new Desc("encryption", Type.BOOL,
                    "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)"),
            new Desc("encrypt.format", Type.STRING, "Encrypt the image, format choices: 'aes', 'luks'"),
            new Desc("encrypt.key-secret", Type.STRING, "ID of secret providing qcow AES key or LUKS passphrase"),
            new Desc("encrypt.cipher-alg", Type.STRING, "Name of encryption cipher algorithm"),
            new Desc("encrypt.cipher-mode", Type.STRING, "Name of encryption cipher mode"),
            new Desc("encrypt.ivgen-alg", Type.STRING, "Name of IV generator algorithm"),
            new Desc("encrypt.ivgen-hash-alg", Type.STRING, "Name of IV generator hash algorithm"),
            new Desc("encrypt.hash-alg", Type.STRING, "Name of encryption hash algorithm"),
            new Desc("encrypt.iter-time", Type.NUMBER, "Time to spend in PBKDF in milliseconds"),
            new Desc("cluster_size", Type.SIZE, "qcow2 cluster size", "65536"),
            new Desc("extended_l2", Type.BOOL, "Extended L2 tables", "off"),
            new Desc("preallocation", Type.STRING, "Preallocation mode (allowed values: off, metadata, falloc, full)"),
            new Desc("compression_type", Type.STRING, "Compression method used for image cluster compression",
                    "zlib"),
            SIZE,
            new Desc("compat", Type.STRING, "Compatibility level (v2 [0.10] or v3 [1.1])"),
            new Desc("backing_file", Type.STRING, "File name of a base image"),
            new Desc("backing_fmt", Type.STRING, "Image format of the base image"),
            new Desc("data_file", Type.STRING, "File name of an external data file"),
            new Desc("data_file_raw", Type.BOOL, "The external data file must stay valid as a raw image"),
            new Desc("lazy_refcounts", Type.BOOL, "Postpone refcount updates", "off"),
            new Desc("refcount_bits", Type.NUMBER, "Width of a reference count entry in bits", "16"));

    private static final String SIZE_HINT = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, "
            + "peta-\nand exabytes, respectively.";

    private record Value(Desc desc, String text, long number) {
    }

    private final List<Desc> descs;
    /** Every value set, in order; a later one for the same name wins. */
    private final List<Value> values = new ArrayList<>();

    CreateOptions(List<Desc> descs) {
        this.descs = descs;
    }

    /** Two lists of options merged, the first winning on a shared name (qemu_opts_append). */
    static List<Desc> append(List<Desc> first, List<Desc> second) {
        List<Desc> all = new ArrayList<>(first);
        for (Desc d : second) {
            if (all.stream().noneMatch(x -> x.name().equals(d.name()))) {
                all.add(d);
            }
        }
        return List.copyOf(all);
    }

    /** Parses and checks an option string; {@code warnings} gets size-syntax deprecation warnings. */
    void parse(String text, Consumer<String> warnings) throws Invalid {
        // Creation options take short-form flags without QEMU's deprecation warning.
        for (KeyValueParser.Element e : KeyValueParser.elements(text, null, null)) {
            if (!e.name().equals("id")) {
                set(e.name(), e.value(), warnings);
            }
        }
    }

    /** Sets one option from its text, checked as qemu checks it. */
    void set(String name, String text, Consumer<String> warnings) throws Invalid {
        Desc d = descs.stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow(
                () -> new Invalid("Invalid parameter '" + name + "'"));
        long number = 0;
        switch (d.type()) {
            case BOOL -> {
                if (!List.of("on", "yes", "true", "y", "off", "no", "false", "n").contains(text)) {
                    throw new Invalid("Parameter '" + name + "' expects 'on' or 'off'");
                }
            }
            case SIZE -> {
                QemuSize.Result r = QemuSize.parse(text, warnings);
                if (r.failure() == QemuSize.Failure.OUT_OF_RANGE) {
                    throw new Invalid("Value '" + text + "' is out of range for parameter '" + name + "'");
                }
                if (!r.ok()) {
                    throw new Invalid("Parameter '" + name + "' expects a non-negative number below 2^64\n"
                            + SIZE_HINT);
                }
                number = r.value();
            }
            case NUMBER -> number = parseNumber(name, text);
            case STRING -> {
            }
        }
        values.add(new Value(d, text, number));
    }

    /** Sets a size from a number (the size given after the file name). */
    void setNumber(String name, long value) {
        Desc d = descs.stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow();
        values.add(new Value(d, Long.toUnsignedString(value), value));
    }

    /** Whether the option exists for this format (set or not). */
    boolean accepts(String name) {
        return descs.stream().anyMatch(d -> d.name().equals(name));
    }

    /**
     * The options of {@code only} that were set, as a driver reads them:
     * sizes and numbers in decimal, booleans as "on" or "off", strings as given.
     */
    java.util.Map<String, String> valuesOf(List<Desc> only) {
        java.util.Map<String, String> out = new java.util.LinkedHashMap<>();
        for (Desc d : only) {
            Value v = find(d.name());
            if (v == null || d.name().equals("size")) {
                continue;
            }
            out.put(d.name(), switch (d.type()) {
                case SIZE -> Long.toUnsignedString(v.number());
                case NUMBER -> Long.toString(v.number());
                case BOOL -> List.of("on", "yes", "true", "y").contains(v.text()) ? "on" : "off";
                case STRING -> v.text();
            });
        }
        return out;
    }

    boolean has(String name) {
        return find(name) != null;
    }

    /** The option's text as given, or null. */
    String text(String name) {
        Value v = find(name);
        return v == null ? null : v.text();
    }

    /** A size option's value (unsigned 64 bits), or {@code otherwise}. */
    long size(String name, long otherwise) {
        Value v = find(name);
        return v == null ? otherwise : v.number();
    }

    /** A boolean option's value, or {@code otherwise}. */
    boolean bool(String name, boolean otherwise) {
        Value v = find(name);
        return v == null ? otherwise : List.of("on", "yes", "true", "y").contains(v.text());
    }

    /** The options that were set, as the text after "fmt=raw " in qemu's "Formatting" line. */
    String formattingLine() {
        List<String> parts = new ArrayList<>();
        for (Desc d : descs) {
            Value v = find(d.name());
            if (v == null) {
                if (d.shownDefault() != null) {
                    parts.add(d.name() + "=" + d.shownDefault());
                }
                continue;
            }
            parts.add(switch (d.type()) {
                case SIZE -> d.name() + "=" + v.number();
                case NUMBER -> d.name() + "=" + v.number();
                case BOOL -> d.name() + "=" + v.text();
                case STRING -> d.name() + "=" + v.text().replace(",", ",,");
            });
        }
        return String.join(" ", parts);
    }

    /** The option set as text again, one by one, as QEMU hands a format's options down to the protocol. */
    List<String[]> setOptions() {
        List<String[]> out = new ArrayList<>();
        for (Desc d : descs) {
            Value v = find(d.name());
            if (v != null) {
                out.add(new String[] {d.name(), v.text()});
            }
        }
        return out;
    }

    /** qemu's option help: sorted by name, "name=<type>" padded to 22 columns. */
    static String help(List<Desc> descs) {
        StringBuilder sb = new StringBuilder();
        descs.stream().sorted(Comparator.comparing(Desc::name)).forEach(d -> {
            String head = d.name() + "=" + d.type().shown;
            sb.append("  ").append(head).append(" ".repeat(Math.max(0, 22 - head.length())))
                    .append(" - ").append(d.help()).append('\n');
        });
        return sb.toString();
    }

    /**
     * QEMU's parse_option_number (qemu_strtou64, base 0): leading blanks, a
     * sign (a minus wraps around, as strtoull), then decimal, 0x hex or 0
     * octal digits and nothing after them.
     */
    static long parseNumber(String name, String text) throws Invalid {
        int i = 0;
        while (i < text.length() && Character.isWhitespace(text.charAt(i))) {
            i++;
        }
        boolean negative = false;
        if (i < text.length() && (text.charAt(i) == '+' || text.charAt(i) == '-')) {
            negative = text.charAt(i) == '-';
            i++;
        }
        int radix = 10;
        if (text.startsWith("0x", i) || text.startsWith("0X", i)) {
            radix = 16;
            i += 2;
        } else if (text.startsWith("0", i) && i + 1 < text.length()) {
            radix = 8;
            i += 1;
        }
        String digits = text.substring(i);
        int base = radix;
        if (digits.isEmpty() || !digits.chars().allMatch(c -> Character.digit(c, base) >= 0)) {
            throw new Invalid("Parameter '" + name + "' expects a number");
        }
        java.math.BigInteger v = new java.math.BigInteger(digits, radix);
        if (v.bitLength() > 64) {
            throw new Invalid("Value '" + text + "' is out of range for parameter '" + name + "'");
        }
        long n = v.longValue();
        return negative ? -n : n;
    }

    private Value find(String name) {
        for (int i = values.size() - 1; i >= 0; i--) {
            if (values.get(i).desc().name().equals(name)) {
                return values.get(i);
            }
        }
        return null;
    }

    /** qemu-img's check of one -o argument: not empty, not starting with ',', no odd run of trailing commas. */
    static boolean isValidList(String text) {
        if (text.isEmpty() || text.charAt(0) == ',') {
            return false;
        }
        int i = text.length();
        while (i > 0 && text.charAt(i - 1) == ',') {
            i--;
        }
        return (text.length() - i) % 2 == 0;
    }
}
