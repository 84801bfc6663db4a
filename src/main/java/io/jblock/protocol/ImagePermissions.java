package io.jblock.protocol;

/**
 * What a user of an image does with it and what it lets others do at the
 * same time: QEMU's block permissions (BLK_PERM_*), as bit masks. The file
 * protocol turns them into the byte locks of {@link FileNode#lockImage}, so
 * jblock and QEMU processes keep off each other's images.
 *
 * @param taken  the permissions the user takes
 * @param shared the permissions the user lets other users take
 */
public record ImagePermissions(int taken, int shared) {
    /** Reads see what was written (QEMU's "consistent read"). */
    public static final int CONSISTENT_READ = 1;
    public static final int WRITE = 1 << 1;
    /** Writes that leave the data as it was (e.g. a copy-on-read). */
    public static final int WRITE_UNCHANGED = 1 << 2;
    public static final int RESIZE = 1 << 3;
    public static final int ALL = CONSISTENT_READ | WRITE | WRITE_UNCHANGED | RESIZE;

    /** QEMU's names for the bits, in bit order, as its lock messages say them. */
    static final String[] NAMES = {"consistent read", "write", "write unchanged", "resize"};

    public ImagePermissions {
        if ((taken & ~ALL) != 0 || (shared & ~ALL) != 0) {
            throw new IllegalArgumentException("unknown permission bits: taken " + taken + ", shared " + shared);
        }
    }

    /** The permissions a user does not share. */
    public int unshared() {
        return ALL & ~shared;
    }
}
