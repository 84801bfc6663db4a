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
 *
 * <p>{@code hostOffset} and {@code file}: where the run's first byte sits in
 * a protocol node, when the node knows (QEMU's BDRV_BLOCK_OFFSET_VALID with
 * its map and file): a file reports its own offset, raw passes its file's
 * through, qcow2 reports the host cluster of a data or preallocated zero
 * cluster. {@code hostOffset} is -1 and {@code file} null when unknown
 * (compressed clusters, holes read from nowhere). The rest of the run is
 * contiguous from there. Used by {@code img map}.
 */
public record BlockStatus(long length, int flags, int depth, long hostOffset, BlockNode file) {
    public static final int DATA = 1;
    public static final int ZERO = 1 << 1;
    public static final int ALLOCATED = 1 << 2;

    public BlockStatus {
        if (length <= 0) {
            throw new IllegalArgumentException("block status run length must be positive: " + length);
        }
        if ((hostOffset < 0) != (file == null)) {
            throw new IllegalArgumentException("a host offset needs its file, and a file its offset: "
                    + hostOffset + ", " + file);
        }
    }

    /** A status without a known host offset. */
    public BlockStatus(long length, int flags, int depth) {
        this(length, flags, depth, -1, null);
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

    /** Whether {@link #hostOffset()} and {@link #file()} say where the bytes are. */
    public boolean hasHostOffset() {
        return file != null;
    }

    /** The same status for a shorter run. */
    public BlockStatus withLength(long newLength) {
        return new BlockStatus(newLength, flags, depth, hostOffset, file);
    }

    /** The same status with other flags and depth, keeping the host offset (a format passing its file's status up). */
    public BlockStatus with(int newFlags, int newDepth) {
        return new BlockStatus(length, newFlags, newDepth, hostOffset, file);
    }

    /** The same run, now known to sit at {@code offset} in {@code node}. */
    public BlockStatus at(long offset, BlockNode node) {
        return new BlockStatus(length, flags, depth, offset, node);
    }
}
