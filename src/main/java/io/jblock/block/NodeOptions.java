package io.jblock.block;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The options of one node as flat dotted keys ({@code driver=raw},
 * {@code file.filename=x}), as QEMU's QDicts are after flattening. Values are
 * strings; JSON booleans and numbers arrive already spelled as text.
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
        String v = values.remove(key);
        if (v == null) {
            return Optional.empty();
        }
        return Optional.of(parseBool(key, v));
    }

    /** An enum value from its table of spellings; the error names the key and what it accepts. */
    public <E extends Enum<E> & Choice> Optional<E> takeChoice(String key, Class<E> type) throws BlockException {
        String v = values.remove(key);
        if (v == null) {
            return Optional.empty();
        }
        return Optional.of(Choice.parse(type, v).orElseThrow(() -> new BlockException(Errno.EINVAL,
                "Parameter '" + key + "' does not accept value '" + v + "'")));
    }

    /** A non-negative integer; empty when not given. */
    public Optional<Long> takeUnsigned(String key) throws BlockException {
        String v = values.remove(key);
        if (v == null) {
            return Optional.empty();
        }
        try {
            long n = Long.parseLong(v);
            if (n < 0) {
                throw new NumberFormatException();
            }
            return Optional.of(n);
        } catch (NumberFormatException e) {
            throw new BlockException(Errno.EINVAL, "Parameter '" + key + "' expects a non-negative number");
        }
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

    /** QEMU's boolean parse: the error text is its own. */
    public static boolean parseBool(String key, String v) throws BlockException {
        return switch (v) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new BlockException(Errno.EINVAL, "Parameter '" + key + "' expects 'on' or 'off'");
        };
    }

    @Override
    public String toString() {
        return values.toString();
    }
}
