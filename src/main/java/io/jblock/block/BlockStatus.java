package io.jblock.block;

/**
 * The status of one run of bytes starting at the queried offset: how long the
 * run is, and what is true of every byte in it.
 *
 * <pre>
 *   flags:  DATA       the bytes are stored (not a hole) in this node or below
 *           ZERO       the bytes read as zero
 *           ALLOCATED  this node (not a backing file) decides the bytes' contents
 * </pre>
 *
 * {@code depth} is 1 when this node decides the bytes, 2 for its backing file,
 * and so on; 0 when no node in the chain has them (they read as zero).
 */
public record BlockStatus(long length, int flags, int depth) {
    public static final int DATA = 1;
    public static final int ZERO = 1 << 1;
    public static final int ALLOCATED = 1 << 2;

    public BlockStatus {
        if (length <= 0) {
            throw new IllegalArgumentException("block status run length must be positive: " + length);
        }
    }

    public boolean isData() {
        return (flags & DATA) != 0;
    }

    public boolean isZero() {
        return (flags & ZERO) != 0;
    }

    public boolean isAllocated() {
        return (flags & ALLOCATED) != 0;
    }

    /** The same status for a shorter run. */
    public BlockStatus withLength(long newLength) {
        return new BlockStatus(newLength, flags, depth);
    }
}
