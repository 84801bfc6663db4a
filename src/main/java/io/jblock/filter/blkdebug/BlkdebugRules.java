package io.jblock.filter.blkdebug;

import io.jblock.block.BlockException;
import io.jblock.block.DebugEvent;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads blkdebug rules from a config file and from {@code inject-error.N.*} /
 * {@code set-state.N.*} options, with QEMU 7.2's messages.
 *
 * <p>The config file is QEMU's config format:
 * <pre>
 * # a comment (only in the first column)
 * [inject-error]
 * event = "write_aio"
 * errno = "28"
 *
 * [set-state]
 * event = "flush_to_disk"
 * new_state = "2"
 * </pre>
 * A line in a section is read as a name, then optionally {@code = "value"};
 * a line that is only a word sets that word to an empty value (and so fails
 * as an unknown parameter), as QEMU's sscanf-based reader does.
 */
final class BlkdebugRules {
    static final String INJECT_ERROR = "inject-error";
    static final String SET_STATE = "set-state";

    private static final List<String> INJECT_KEYS =
            List.of("event", "state", "iotype", "errno", "sector", "once", "immediately");
    private static final List<String> SET_STATE_KEYS = List.of("event", "state", "new_state");

    private record Section(String group, Map<String, String> values) {
    }

    private BlkdebugRules() {
    }

    /**
     * The rules of the config file (null for none) and of the options'
     * {@code inject-error} and {@code set-state} keys (taken), inject-error
     * rules first, each kind in the order given.
     */
    static List<BlkdebugRule> read(String configPath, NodeOptions options) throws BlockException {
        List<Section> sections = new ArrayList<>();
        if (configPath != null) {
            sections.addAll(parseConfig(configPath));
        }
        sections.addAll(fromOptions(options, INJECT_ERROR));
        sections.addAll(fromOptions(options, SET_STATE));
        List<BlkdebugRule> rules = new ArrayList<>();
        for (Section s : sections) {
            if (s.group().equals(INJECT_ERROR)) {
                rules.add(injectRule(s.values()));
            }
        }
        for (Section s : sections) {
            if (s.group().equals(SET_STATE)) {
                rules.add(setStateRule(s.values()));
            }
        }
        return rules;
    }

    private static List<Section> parseConfig(String path) throws BlockException {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of(path), StandardCharsets.ISO_8859_1);
        } catch (NoSuchFileException e) {
            throw new BlockException(Errno.ENOENT, "Could not read blkdebug config file: " + Errno.ENOENT.text());
        } catch (AccessDeniedException e) {
            throw new BlockException(Errno.EACCES, "Could not read blkdebug config file: " + Errno.EACCES.text());
        } catch (IOException e) {
            throw new BlockException(Errno.EIO, "Could not read blkdebug config file: " + Errno.EIO.text());
        }
        List<Section> sections = new ArrayList<>();
        Section current = null;
        for (String line : lines) {
            if (line.isEmpty() || line.charAt(0) == '#') {
                continue;
            }
            if (line.charAt(0) == '[') {
                int close = line.indexOf(']');
                if (close < 0) {
                    throw new BlockException(Errno.EINVAL, "parse error");
                }
                String group = line.substring(1, close);
                int space = group.indexOf(' ');
                if (space >= 0) {
                    group = group.substring(0, space); // [group "id"]: the id names the section, nothing more
                }
                if (!group.equals(INJECT_ERROR) && !group.equals(SET_STATE)) {
                    throw new BlockException(Errno.EINVAL, "There is no option group '" + group + "'");
                }
                current = new Section(group, new LinkedHashMap<>());
                sections.add(current);
                continue;
            }
            String trimmed = line.strip();
            if (trimmed.isEmpty()) {
                throw new BlockException(Errno.EINVAL, "parse error");
            }
            int end = 0;
            while (end < trimmed.length() && !Character.isWhitespace(trimmed.charAt(end))) {
                end++;
            }
            String name = trimmed.substring(0, end);
            String value = valueOf(trimmed.substring(end).strip());
            if (current == null) {
                throw new BlockException(Errno.EINVAL, "no group defined");
            }
            List<String> allowed = current.group().equals(INJECT_ERROR) ? INJECT_KEYS : SET_STATE_KEYS;
            if (!allowed.contains(name)) {
                throw new BlockException(Errno.EINVAL, "Invalid parameter '" + name + "'");
            }
            checkType(name, value);
            current.values().put(name, value);
        }
        return sections;
    }

    /** The text between the quotes of {@code = "value"}, or "" when the line has no such part. */
    private static String valueOf(String rest) {
        if (!rest.startsWith("=")) {
            return "";
        }
        rest = rest.substring(1).strip();
        if (!rest.startsWith("\"")) {
            return "";
        }
        int close = rest.indexOf('"', 1);
        return close < 0 ? rest.substring(1) : rest.substring(1, close);
    }

    /**
     * {@code group.N.key=value} (a list) or {@code group.key=value} (one
     * section), as QEMU's qemu_config_parse_qdict reads them.
     */
    private static List<Section> fromOptions(NodeOptions options, String group) throws BlockException {
        NodeOptions all = options.takeChild(group);
        if (all.isEmpty()) {
            return List.of();
        }
        Map<String, String> flat = all.remaining();
        TreeMap<Long, Map<String, String>> indexed = new TreeMap<>();
        Map<String, String> single = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : flat.entrySet()) {
            String key = e.getKey();
            int dot = key.indexOf('.');
            if (dot > 0 && key.substring(0, dot).chars().allMatch(Character::isDigit)) {
                indexed.computeIfAbsent(Long.parseLong(key.substring(0, dot)), i -> new LinkedHashMap<>())
                        .put(key.substring(dot + 1), e.getValue());
            } else {
                single.put(key, e.getValue());
            }
        }
        List<Map<String, String>> groups = new ArrayList<>();
        if (!single.isEmpty()) {
            groups.add(single);
        }
        groups.addAll(indexed.values());
        List<String> allowed = group.equals(INJECT_ERROR) ? INJECT_KEYS : SET_STATE_KEYS;
        List<Section> sections = new ArrayList<>();
        for (Map<String, String> values : groups) {
            for (Map.Entry<String, String> e : values.entrySet()) {
                if (!allowed.contains(e.getKey())) {
                    throw new BlockException(Errno.EINVAL,
                            "[" + group + "] section doesn't support the option '" + e.getKey() + "'");
                }
                checkType(e.getKey(), e.getValue() == null ? "" : e.getValue());
            }
            sections.add(new Section(group, values));
        }
        return sections;
    }

    private static void checkType(String key, String value) throws BlockException {
        switch (key) {
            case "state", "errno", "sector", "new_state" -> number(key, value);
            case "once", "immediately" -> NodeOptions.parseBool(key, value);
            default -> { }
        }
    }

    private static BlkdebugRule injectRule(Map<String, String> v) throws BlockException {
        DebugEvent event = event(v);
        long state = numberOr(v, "state", 0);
        long errno = numberOr(v, "errno", Errno.EIO.number());
        boolean once = v.containsKey("once") && NodeOptions.parseBool("once", v.get("once"));
        boolean immediately = v.containsKey("immediately") && NodeOptions.parseBool("immediately", v.get("immediately"));
        long sector = numberOr(v, "sector", -1);
        int mask = BlkdebugIoType.DEFAULT_MASK;
        String iotype = v.get("iotype");
        if (iotype != null) {
            BlkdebugIoType t = BlkdebugIoType.ofOptionName(iotype);
            if (t == null) {
                throw new BlockException(Errno.EINVAL, "invalid parameter value: " + iotype);
            }
            mask = t.bit();
        }
        long offset = sector == -1 ? -1 : sector * 512;
        return BlkdebugRule.injectError(event, state, (int) errno, once, immediately, offset, mask);
    }

    private static BlkdebugRule setStateRule(Map<String, String> v) throws BlockException {
        DebugEvent event = event(v);
        return BlkdebugRule.setState(event, numberOr(v, "state", 0), numberOr(v, "new_state", 0));
    }

    private static DebugEvent event(Map<String, String> v) throws BlockException {
        String name = v.get("event");
        if (name == null) {
            throw new BlockException(Errno.EINVAL, "Missing event name for rule");
        }
        DebugEvent e = DebugEvent.ofOptionName(name);
        if (e == null) {
            throw new BlockException(Errno.EINVAL, "invalid parameter value: " + name);
        }
        return e;
    }

    private static long numberOr(Map<String, String> v, String key, long dflt) throws BlockException {
        String s = v.get(key);
        return s == null ? dflt : number(key, s);
    }

    /** QEMU's number options (qemu_strtou64, base 0): decimal, 0x hex or 0 octal; -N wraps as in C. */
    static long number(String key, String text) throws BlockException {
        String s = text == null ? "" : text.strip();
        boolean negative = s.startsWith("-");
        if (negative) {
            s = s.substring(1);
        }
        int radix = 10;
        if (s.startsWith("0x") || s.startsWith("0X")) {
            radix = 16;
            s = s.substring(2);
        } else if (s.length() > 1 && s.startsWith("0")) {
            radix = 8;
            s = s.substring(1);
        }
        if (s.isEmpty()) {
            throw new BlockException(Errno.EINVAL, "Parameter '" + key + "' expects a number");
        }
        long n;
        try {
            n = Long.parseUnsignedLong(s, radix);
        } catch (NumberFormatException e) {
            if (s.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                throw new BlockException(Errno.ERANGE, "Value '" + text + "' is too large for parameter '" + key + "'");
            }
            throw new BlockException(Errno.EINVAL, "Parameter '" + key + "' expects a number");
        }
        return negative ? -n : n;
    }
}
