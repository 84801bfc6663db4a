package io.jblock.block;

import java.util.Map;

/**
 * What {@link BlockDriver#create} is asked to make: the virtual size, how
 * new space is prepared, and the format's own creation options by their
 * {@code -o} names ({@code compat}, {@code cluster_size},
 * {@code backing_file}...), as text already checked for its type (sizes in
 * decimal, booleans "on"/"off"). Protocols use the size and preallocation
 * only.
 *
 * @param size          unsigned 64 bits, as the user gave it; the driver rounds as it needs
 * @param preallocation how the new space is prepared
 * @param options       the format's options that were set, in the order the user gave them
 */
public record ImageCreation(long size, Prealloc preallocation, Map<String, String> options) {
    public ImageCreation {
        options = Map.copyOf(options);
    }

    /** A creation with no format options. */
    public static ImageCreation of(long size, Prealloc preallocation) {
        return new ImageCreation(size, preallocation, Map.of());
    }

    /** The option's text, or null when it was not set. */
    public String option(String name) {
        return options.get(name);
    }
}
