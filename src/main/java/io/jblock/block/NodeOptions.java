package io.jblock.block;

import io.jblock.block.QemuSizes;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The options of one node as flat dotted keys ({@code driver=raw},
 * {@code file.filename=x}), as QEMU's QDicts are after flattening. Values are
 * strings; JSON booleans and numbers arrive already spelled as text. A key
 * whose value is null stands for a JSON null, {} or [] given for it: present,
 * so a driver that does not take it refuses it, but with no text to use.
 *
 * <p>Drivers <em>take</em> the keys they know; whatever is left when the node
 * is open is an option the driver does not support, and the open fails naming
 * it, as QEMU does ("Block format 'raw' does not support the option 'foo'").
 * Not thread-safe: one open uses it.
 */
public final class NodeOptions {
    private final LinkedHashMap<String, String> values;

    public NodeOptions(Map<String, String> values) {
        this.values = new LinkedHashMap<>(values);
    }

    public static NodeOptions of(String... keyValues) {
        if (keyValues.length % 2 != 0) {
            throw new IllegalArgumentException("key without a value");
        }
        LinkedHashMap<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put(keyValues[i], keyValues[i + 1]);
        }
        return new NodeOptions(m);
    }

    /** The keys not taken yet, in the order given. */
    public Map<String, String> remaining() {
        return java.util.Collections.unmodifiableMap(values);
    }

    public boolean has(String key) {
        return values.containsKey(key);
    }

    /** Whether any key starts with {@code prefix + "."}. */
    public boolean hasChild(String prefix) {
        String p = prefix + ".";
        return values.keySet().stream().anyMatch(k -> k.startsWith(p));
    }

    public String peek(String key) {
        return values.get(key);
    }

    public void put(String key, String value) {
        values.put(key, value);
    }

    /** Sets {@code key} only where it was not given. */
    public void putDefault(String key, String value) {
        values.putIfAbsent(key, value);
    }

    public Optional<String> take(String key) {
        return Optional.ofNullable(values.remove(key));
    }

    /** A boolean in any of QEMU's spellings (on/off, yes/no, true/false, y/n); empty when not given. */
    public Optional<Boolean> takeBool(String key) throws BlockException {
        if (!values.containsKey(key)) {
            return Optional.empty();
        }
        String v = values.remove(key);
        return Optional.of(parseBool(key, v));
    }

    /**
     * An enum value from its table of spellings. The error is QEMU's for enum
     * options of a node (qapi_enum_parse): {@code invalid parameter value: X}.
     */
    public <E extends Enum<E> & Choice> Optional<E> takeChoice(String key, Class<E> type) throws BlockException {
        String v = values.remove(key);
        if (v == null) {
            return Optional.empty();
        }
        return Optional.of(Choice.parse(type, v).orElseThrow(() -> new BlockException(Errno.EINVAL,
                "invalid parameter value: " + v)));
    }

    /**
     * A size in bytes, as QEMU's size options take it (qemu_strtosz, see
     * {@link QemuSizes}): a decimal number with an optional suffix B, k, M, G,
     * T, P or E (powers of 1024, either case), a fraction only with a suffix,
     * or a hexadecimal number {@code 0x...}. Empty when not given.
     */
    public Optional<Long> takeUnsigned(String key) throws BlockException {
        String v = values.remove(key);
        if (v == null) {
            return Optional.empty();
        }
        return Optional.of(parseSize(key, v));
    }

    /** The text QEMU appends to every size error (parse_option_size's hint). */
    public static final String SIZE_HINT = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
            + "and exabytes, respectively.";

    /**
     * Parses a size the way QEMU's parse_option_size does, with its two
     * errors: not a number, and out of range (past 2^64; for jblock past
     * 2^63 - 1, since Java's long is signed). QEMU's deprecation warning for a
     * suffix on a hex number is dropped: nodes have no place to print it yet.
     */
    public static long parseSize(String key, String text) throws BlockException {
        QemuSizes.Result r = QemuSizes.parse(text, warning -> { });
        if (r.failure() == QemuSizes.Failure.INVALID) {
            throw new BlockException(Errno.EINVAL, "Parameter '" + key
                    + "' expects a non-negative number below 2^64\n" + SIZE_HINT);
        }
        if (!r.fitsInLong()) {
            throw new BlockException(Errno.ERANGE, "Value '" + text + "' is out of range for parameter '" + key + "'");
        }
        return r.value();
    }

    /** Removes and returns every {@code prefix.*} key as the child's own options, prefix stripped. */
    public NodeOptions takeChild(String prefix) {
        String p = prefix + ".";
        LinkedHashMap<String, String> child = new LinkedHashMap<>();
        List<String> taken = new ArrayList<>();
        for (Map.Entry<String, String> e : values.entrySet()) {
            if (e.getKey().startsWith(p)) {
                child.put(e.getKey().substring(p.length()), e.getValue());
                taken.add(e.getKey());
            }
        }
        taken.forEach(values::remove);
        return new NodeOptions(child);
    }

    /** The first key no one took, or null when all were taken. */
    public String firstRemainingKey() {
        return values.isEmpty() ? null : values.keySet().iterator().next();
    }

    public boolean isEmpty() {
        return values.isEmpty();
    }

    /** Every spelling QEMU takes for true (qapi_bool_parse), in its order. */
    public static final List<String> TRUE_SPELLINGS = List.of("on", "yes", "true", "y");
    /** Every spelling QEMU takes for false. */
    public static final List<String> FALSE_SPELLINGS = List.of("off", "no", "false", "n");

    /** QEMU's boolean parse (qapi_bool_parse): exact, case-sensitive spellings; the error text is its own. */
    public static boolean parseBool(String key, String v) throws BlockException {
        if (v != null && TRUE_SPELLINGS.contains(v)) {
            return true;
        }
        if (v != null && FALSE_SPELLINGS.contains(v)) {
            return false;
        }
        throw new BlockException(Errno.EINVAL, "Parameter '" + key + "' expects 'on' or 'off'");
    }

    @Override
    public String toString() {
        return values.toString();
    }
}
