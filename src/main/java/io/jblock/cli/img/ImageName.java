package io.jblock.cli.img;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.options.JsonOptions;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** The name {@code info} shows after "image:", as QEMU derives it (bdrv_refresh_filename) for what jblock opens. */
final class ImageName {
    private ImageName() {
    }

    /**
     * The name qemu-img shows for an image: the file name as given, without
     * "file:"; for json: and --image-opts, the host file's name as the options give it.
     */
    static String of(ImageOpener.Request r, Path host, Map<String, String> given)
            throws BlockException {
        if (!r.imageOpts() && !JsonOptions.isJson(r.name())) {
            return r.name().startsWith("file:") ? r.name().substring(5) : r.name();
        }
        if ("raw".equals(given.get("driver")) && (given.containsKey("offset") || given.containsKey("size"))) {
            return rawWindowName(r, given);
        }
        // The name as written in the options: a Path would have tidied "a//b" and "dir/" away.
        for (String key : new String[] {"file.filename", "filename"}) {
            if (given.get(key) != null) {
                return given.get(key);
            }
        }
        return host != null ? host.toString() : r.name();
    }

    /**
     * A raw window ({@code offset}, {@code size}) is not the plain file, so
     * QEMU names such an image by its options: json:{...} with the raw
     * node's driver and window and the file child's driver and name, values
     * typed as given (numbers from JSON, strings from --image-opts).
     */
    private static String rawWindowName(ImageOpener.Request r, Map<String, String> given) throws BlockException {
        JsonNode json = null;
        if (JsonOptions.isJson(r.name())) {
            try {
                json = new ObjectMapper().readTree(r.name().substring(5));
            } catch (IOException e) {
                throw new BlockException(Errno.EINVAL, "Could not parse the JSON options");
            }
        }
        Map<String, Object> file = new LinkedHashMap<>();
        file.put("driver", given.getOrDefault("file.driver", "file"));
        file.put("filename", given.get("file.filename"));
        Map<String, Object> top = new LinkedHashMap<>();
        top.put("driver", "raw");
        for (String key : new String[] {"offset", "size"}) {
            if (given.containsKey(key)) {
                var node = json != null ? json.get(key) : null;
                top.put(key, node != null && node.isIntegralNumber() ? (Object) node.longValue() : given.get(key));
            }
        }
        top.put("file", file);
        return "json:" + QemuJson.compact(top);
    }
}
