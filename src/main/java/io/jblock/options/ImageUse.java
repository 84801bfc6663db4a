package io.jblock.options;

import io.jblock.protocol.ImagePermissions;

/**
 * What a tool does with the image it opens, for the image locks: the
 * permissions QEMU's tools take on the root of their graph and share with
 * others (read from the locks qemu-io, qemu-img and qemu-nbd 7.2 hold).
 * Every user reads; a writable root also writes.
 */
public enum ImageUse {
    /** qemu-io, qemu-img info/check/map/compare, convert's target: shares everything. */
    DEFAULT(0, ImagePermissions.ALL),
    /** qemu-img convert's sources (BDRV_O_NO_SHARE): nobody may write them while they are copied. */
    COPY_SOURCE(0, ImagePermissions.CONSISTENT_READ | ImagePermissions.WRITE_UNCHANGED),
    /** qemu-nbd's export: its size is what the clients were told, so nobody may resize it. */
    EXPORT(0, ImagePermissions.ALL & ~ImagePermissions.RESIZE),
    /** qemu-img resize (BDRV_O_RESIZE). */
    RESIZE(ImagePermissions.RESIZE, ImagePermissions.ALL);

    private final int extra;
    private final int shared;

    ImageUse(int extra, int shared) {
        this.extra = extra;
        this.shared = shared;
    }

    /** The permissions on a root that is read-only or not. */
    ImagePermissions permissions(boolean readOnly) {
        int taken = ImagePermissions.CONSISTENT_READ | (readOnly ? 0 : ImagePermissions.WRITE) | extra;
        return new ImagePermissions(taken, shared);
    }
}
