package io.jblock.options;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code json:{...}} file names and JSON option trees, flattened to dotted
 * keys ({@code {"file":{"driver":"file"}}} becomes {@code file.driver=file}),
 * as QEMU flattens its QDicts. Booleans become on/off, numbers their decimal text.
 */
public final class JsonOptions {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    /** Deeper trees than this are refused, so a hostile string cannot exhaust the stack. */
    private static final int MAX_DEPTH = 32;

    private JsonOptions() {
    }

    public static boolean isJson(String filename) {
        return filename != null && filename.startsWith("json:");
    }

    /** Parses the text after "json:" (or a plain JSON object). */
    public static LinkedHashMap<String, String> parse(String text) throws BlockException {
        String body = text.startsWith("json:") ? text.substring(5) : text;
        JsonNode root;
        try {
            root = MAPPER.readTree(body);
        } catch (Exception e) {
            throw new BlockException(Errno.EINVAL, "Could not parse the JSON options");
        }
        if (root == null || !root.isObject()) {
            throw new BlockException(Errno.EINVAL, "Invalid JSON object given");
        }
        LinkedHashMap<String, String> out = new LinkedHashMap<>();
        flatten("", root, out, 0);
        return out;
    }

    private static void flatten(String prefix, JsonNode node, Map<String, String> out, int depth)
            throws BlockException {
        if (depth > MAX_DEPTH) {
            throw new BlockException(Errno.EINVAL, "JSON options nested too deeply");
        }
        if (node.isObject()) {
            var it = node.properties().iterator();
            while (it.hasNext()) {
                var e = it.next();
                flatten(prefix + e.getKey() + (e.getValue().isContainerNode() ? "." : ""), e.getValue(), out,
                        depth + 1);
            }
        } else if (node.isArray()) {
            for (int i = 0; i < node.size(); i++) {
                JsonNode v = node.get(i);
                flatten(prefix + i + (v.isContainerNode() ? "." : ""), v, out, depth + 1);
            }
        } else if (node.isBoolean()) {
            out.put(prefix, node.booleanValue() ? "on" : "off");
        } else if (node.isNull()) {
            out.put(prefix, "");
        } else {
            out.put(prefix, node.asText());
        }
    }
}
