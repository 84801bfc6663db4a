package io.jblock.block;

import java.util.Map;

/**
 * What a node says about itself for {@code info} commands.
 *
 * @param formatName     the driver name ("raw", "file", "qcow2")
 * @param clusterSize    the allocation unit in bytes, 0 when the format has none
 * @param vmStateOffset  where VM state would be saved, 0 when not supported
 * @param formatSpecific format-specific fields for {@code img info}, in print order
 */
public record NodeInfo(String formatName, long clusterSize, long vmStateOffset, Map<String, Object> formatSpecific) {
    public static NodeInfo simple(String formatName) {
        return new NodeInfo(formatName, 0, 0, Map.of());
    }
}
