package io.jblock.block;

/**
 * Flags of a write or write-zeroes request, as a bit set so the hot path
 * allocates nothing and NBD's own flag bits map onto them cheaply.
 */
public final class WriteFlags {
    /** No flags. */
    public static final int NONE = 0;
    /** Force unit access: the data is on the medium when the request completes. */
    public static final int FUA = 1;
    /** Write-zeroes may deallocate (punch a hole) instead of writing zeroes. */
    public static final int MAY_UNMAP = 1 << 1;
    /** Write-zeroes must fail with ENOTSUP rather than fall back to writing zero buffers. */
    public static final int NO_FALLBACK = 1 << 2;
    /**
     * Write compressed clusters (qemu-io's {@code write -c}, QEMU's
     * BDRV_REQ_WRITE_COMPRESSED): whole clusters only, into clusters not yet
     * allocated; a node that cannot compress refuses it with ENOTSUP.
     */
    public static final int COMPRESSED = 1 << 3;

    private WriteFlags() {
    }

    public static boolean has(int flags, int flag) {
        return (flags & flag) != 0;
    }
}
