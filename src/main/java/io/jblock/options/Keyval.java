package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses {@code --blockdev} strings with the rules of QEMU's keyval parser
 * (util/keyval.c), which differ from {@link KeyValueParser}'s QemuOpts rules:
 *
 * <ul>
 *   <li>a key is a dotted path of fragments; a fragment is a name (a letter,
 *       then letters, digits, '-' or '_', optionally after a downstream
 *       {@code __RFQDN_} prefix) or, after the first, a list index (digits);</li>
 *   <li>every element needs {@code =}, except that the first may be a bare
 *       value for the implied key ({@code raw,file.filename=x} means
 *       {@code driver=raw,...}); there are no short-form booleans;</li>
 *   <li>{@code ,,} in a value is a comma; a later value for a key replaces
 *       the earlier one;</li>
 *   <li>a key cannot be both a value and a parent ({@code a=1,a.b=2}), and a
 *       level whose members are indexes becomes a list, which must be dense
 *       from 0 and not mixed with names.</li>
 * </ul>
 *
 * The result is the flat dotted form {@link io.jblock.block.NodeOptions} uses.
 * Errors are keyval.c's, word for word (checked against qemu-img
 * {@code --object}, which parses with keyval in QEMU 7.2).
 */
public final class Keyval {
    /** keyval.c keeps fragments in a 128-byte buffer. */
    private static final int MAX_FRAGMENT = 127;

    private Keyval() {
    }

    /** Parses with {@code driver} as the implied key, as {@code --blockdev} does. */
    public static LinkedHashMap<String, String> parseBlockdev(String text) throws BlockException {
        return parse(text, "driver");
    }

    /** Parses {@code text}; {@code impliedKey} may be null. */
    public static LinkedHashMap<String, String> parse(String text, String impliedKey) throws BlockException {
        LinkedHashMap<String, Object> root = new LinkedHashMap<>();
        int p = 0;
        while (p < text.length()) {
            p = parseOne(root, text, p, impliedKey);
            impliedKey = null;
        }
        Object tree = listify(root, "");
        LinkedHashMap<String, String> flat = new LinkedHashMap<>();
        flatten("", tree, flat);
        return flat;
    }

    private static int parseOne(Map<String, Object> root, String text, int start, String impliedKey)
            throws BlockException {
        int len = 0;
        while (start + len < text.length() && text.charAt(start + len) != '=' && text.charAt(start + len) != ',') {
            len++;
        }
        String key = text.substring(start);
        int keyEnd = len;
        String impliedValue = null;
        int after = start + len;
        if (len > 0 && (start + len >= text.length() || text.charAt(start + len) != '=') && impliedKey != null) {
            impliedValue = text.substring(start, start + len);
            key = impliedKey;
            keyEnd = impliedKey.length();
        }

        // Walk the fragments of key[0, keyEnd).
        Map<String, Object> cur = root;
        int s = 0;
        String fragment;
        while (true) {
            int flen;
            if (s != 0 && indexLength(key, s, keyEnd) > 0) {
                flen = indexLength(key, s, keyEnd);
            } else {
                flen = qapiNameLength(key, s, keyEnd);
            }
            if (flen == 0 || (s + flen < keyEnd && key.charAt(s + flen) != '.')) {
                throw new BlockException(Errno.EINVAL, "Invalid parameter '" + key.substring(0, keyEnd) + "'");
            }
            if (flen > MAX_FRAGMENT) {
                boolean whole = s == 0 && s + flen == keyEnd;
                throw new BlockException(Errno.EINVAL, "Parameter" + (whole ? "" : " fragment") + " '"
                        + key.substring(s, s + flen) + "' is too long");
            }
            fragment = key.substring(s, s + flen);
            s += flen;
            if (s >= keyEnd || key.charAt(s) != '.') {
                break;
            }
            // Descend: fragment names a level.
            Object old = cur.get(fragment);
            if (old != null && !(old instanceof Map)) {
                throw new BlockException(Errno.EINVAL, "Parameters '" + key.substring(0, s) + ".*' used inconsistently");
            }
            if (old == null) {
                old = new LinkedHashMap<String, Object>();
                cur.put(fragment, old);
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> next = (Map<String, Object>) old;
            cur = next;
            s++;
        }

        String value;
        int next;
        if (impliedValue != null) {
            value = impliedValue;
            next = after < text.length() && text.charAt(after) == ',' ? after + 1 : after;
        } else {
            int q = start + s;
            if (q >= text.length() || text.charAt(q) != '=') {
                throw new BlockException(Errno.EINVAL, "Expected '=' after parameter '" + text.substring(start, q) + "'");
            }
            q++;
            StringBuilder v = new StringBuilder();
            while (q < text.length()) {
                char c = text.charAt(q);
                if (c == ',') {
                    q++;
                    if (q >= text.length() || text.charAt(q) != ',') {
                        break;
                    }
                }
                v.append(text.charAt(q++));
            }
            value = v.toString();
            next = q;
        }
        Object old = cur.get(fragment);
        if (old instanceof Map) {
            throw new BlockException(Errno.EINVAL, "Parameters '" + key.substring(0, keyEnd) + ".*' used inconsistently");
        }
        cur.put(fragment, value);
        return next;
    }

    /** keyval.c's key_to_index: a run of digits, only where an index may stand. */
    private static int indexLength(String key, int s, int end) {
        int i = s;
        while (i < end && key.charAt(i) >= '0' && key.charAt(i) <= '9') {
            i++;
        }
        return i - s;
    }

    /** QEMU's parse_qapi_name, not requiring the name to end the string. */
    private static int qapiNameLength(String key, int s, int end) {
        int p = s;
        if (p < end && key.charAt(p) == '_') { // downstream extension: __RFQDN_
            p++;
            if (p >= end || key.charAt(p) != '_') {
                return 0;
            }
            p++;
            while (p < end && (Character.isLetterOrDigit(key.charAt(p)) || key.charAt(p) == '-'
                    || key.charAt(p) == '.')) {
                p++;
            }
            if (p >= end || key.charAt(p) != '_') {
                return 0;
            }
            p++;
        }
        if (p >= end || !isAsciiLetter(key.charAt(p))) {
            return 0;
        }
        while (p < end && (isAsciiLetter(key.charAt(p)) || Character.isDigit(key.charAt(p))
                || key.charAt(p) == '-' || key.charAt(p) == '_')) {
            p++;
        }
        return p - s;
    }

    private static boolean isAsciiLetter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    /** Turns levels whose keys are all indexes into lists (keyval_listify), with its two errors. */
    private static Object listify(Map<String, Object> cur, String path) throws BlockException {
        boolean hasIndex = false;
        boolean hasMember = false;
        for (Map.Entry<String, Object> e : cur.entrySet()) {
            if (!e.getKey().isEmpty() && Character.isDigit(e.getKey().charAt(0))) {
                hasIndex = true;
            } else {
                hasMember = true;
            }
            if (e.getValue() instanceof Map<?, ?> m) {
                @SuppressWarnings("unchecked")
                Map<String, Object> child = (Map<String, Object>) m;
                e.setValue(listify(child, path + e.getKey() + "."));
            }
        }
        if (hasIndex && hasMember) {
            throw new BlockException(Errno.EINVAL, "Parameters '" + path + "*' used inconsistently");
        }
        if (!hasIndex) {
            return cur;
        }
        Object[] elements = new Object[cur.size()];
        int max = -1;
        for (Map.Entry<String, Object> e : cur.entrySet()) {
            long index;
            try {
                index = Long.parseLong(e.getKey());
            } catch (NumberFormatException tooBig) {
                index = Integer.MAX_VALUE;
            }
            max = (int) Math.max(max, Math.min(index, Integer.MAX_VALUE));
            if (index < elements.length) {
                elements[(int) index] = e.getValue();
            }
        }
        List<Object> list = new ArrayList<>();
        for (int i = 0; i <= Math.min(max, elements.length); i++) {
            if (i == elements.length || elements[i] == null) {
                throw new BlockException(Errno.EINVAL, "Parameter '" + path + i + "' missing");
            }
            list.add(elements[i]);
        }
        return list;
    }

    private static void flatten(String prefix, Object node, Map<String, String> out) {
        if (node instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                flatten(prefix + e.getKey() + ".", e.getValue(), out);
            }
        } else if (node instanceof List<?> l) {
            for (int i = 0; i < l.size(); i++) {
                flatten(prefix + i + ".", l.get(i), out);
            }
        } else {
            out.put(prefix.substring(0, prefix.length() - 1), (String) node);
        }
    }
}
