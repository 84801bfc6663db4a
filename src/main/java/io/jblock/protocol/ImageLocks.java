package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.engine.ErrnoException;
import io.jblock.engine.PosixFile;

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
    static void takeForCreate(PosixFile f, String path) throws BlockException {
        int[] held = {WRITE, RESIZE};
        int[] unshared = {RESIZE};
        for (int p : held) {
            lockByte(f, PERM_BASE + p);
        }
        for (int p : unshared) {
            lockByte(f, SHARED_BASE + p);
        }
        for (int p : held) {
            refuseIfLocked(f, SHARED_BASE + p, "Failed to get \"" + NAMES[p] + "\" lock", path);
        }
        for (int p : unshared) {
            refuseIfLocked(f, PERM_BASE + p, "Failed to get shared \"" + NAMES[p] + "\" lock", path);
        }
    }

    private static void lockByte(PosixFile f, int offset) throws BlockException {
        try {
            f.lockSharedByte(offset);
        } catch (ErrnoException e) {
            throw new BlockException(Errno.of(e.errno()), "Failed to lock byte " + offset, e);
        }
    }

    /** As QEMU, a lock that cannot even be tested counts as held by someone else. */
    private static void refuseIfLocked(PosixFile f, int offset, String what, String path) throws BlockException {
        boolean locked;
        try {
            locked = f.isByteLockedByOthers(offset);
        } catch (ErrnoException e) {
            locked = true;
        }
        if (locked) {
            throw new BlockException(Errno.EAGAIN, what + "\nIs another process using the image [" + path + "]?");
        }
    }
}
