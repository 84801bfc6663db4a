package io.jblock.cli.img;

/**
 * QEMU's image locking, so that jblock and QEMU processes (VMs, qemu-nbd,
 * qemu-img) respect each other's use of an image. QEMU takes shared open
 * file description locks on single bytes of the image file: byte 100 + p
 * while it holds permission p, byte 200 + p while it refuses to share p.
 * Before using a permission, it checks that nobody refuses to share it;
 * before refusing one, that nobody holds it.
 *
 * <p>Permission numbers (QEMU's BLK_PERM_* bit positions): consistent-read
 * 0, write 1, write-unchanged 2, resize 3, graph-mod 4 (its "change
 * children" permission, named so in the messages).
 */
final class ImageLocks {
    private static final int PERM_BASE = 100;
    private static final int SHARED_BASE = 200;
    private static final int WRITE = 1;
    private static final int RESIZE = 3;
    private static final String[] NAMES = {"consistent read", "write", "write unchanged", "resize", "change children"};

    private ImageLocks() {
    }

    /**
     * What creating an image takes: write and resize, sharing everything but
     * resize (the file must keep the size it is given). Fails with QEMU's
     * message when another process is in the way; the locks last until the
     * file is closed.
     */
    static void takeForCreate(HostFile f, String path) throws HostFile.CallFailed {
        int[] held = {WRITE, RESIZE};
        int[] unshared = {RESIZE};
        for (int p : held) {
            f.lockByte(PERM_BASE + p);
        }
        for (int p : unshared) {
            f.lockByte(SHARED_BASE + p);
        }
        String hint = "\nIs another process using the image [" + path + "]?";
        for (int p : held) {
            if (f.byteLockedByOthers(SHARED_BASE + p)) {
                throw new HostFile.CallFailed(0, "Failed to get \"" + NAMES[p] + "\" lock" + hint);
            }
        }
        for (int p : unshared) {
            if (f.byteLockedByOthers(PERM_BASE + p)) {
                throw new HostFile.CallFailed(0, "Failed to get shared \"" + NAMES[p] + "\" lock" + hint);
            }
        }
    }
}
