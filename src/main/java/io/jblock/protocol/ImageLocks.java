package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.engine.ErrnoException;
import io.jblock.engine.PosixFile;

/**
 * QEMU's image locking, so that jblock and QEMU processes (VMs, qemu-nbd,
 * qemu-img) respect each other's use of an image. QEMU takes shared open
 * file description locks on single bytes of the image file: byte 100 + p
 * while it holds permission p, byte 200 + p while it refuses to share p
 * (p the bit number of {@link ImagePermissions}). Before using a permission,
 * it checks that nobody refuses to share it; before refusing one, that
 * nobody holds it. All the locks are shared ones, so taking them never fails
 * for QEMU's users: only the test finds the conflict.
 *
 * <pre>
 *   byte 100 101 102 103        200 201 202 203
 *        CR  W   WU  RS  held   CR  W   WU  RS  not shared
 * </pre>
 *
 * <p>Open file description locks belong to the open file, not to the
 * process: two opens of one image in one JVM exclude each other as two
 * processes do, and closing the descriptor drops its locks.
 */
final class ImageLocks implements AutoCloseable {
    private static final int PERM_BASE = 100;
    private static final int SHARED_BASE = 200;
    private static final int BITS = ImagePermissions.NAMES.length;

    private final PosixFile file;
    private final String name;
    /** The bytes locked now: bit p of {@code held} is byte 100 + p, of {@code unshared} byte 200 + p. */
    private int held;
    private int unshared;

    private ImageLocks(PosixFile file, String name) {
        this.file = file;
        this.name = name;
    }

    /**
     * A descriptor of its own for the locks of the image at {@code path},
     * opened read-only; {@code name} is how messages name the image.
     */
    static ImageLocks open(String path, String name) throws BlockException {
        try {
            return new ImageLocks(PosixFile.openForLocking(path), name);
        } catch (ErrnoException e) {
            throw new BlockException(Errno.of(e.errno()), "Could not open '" + path + "': " + e.reason(), e);
        }
    }

    /**
     * Whether this file system has open file description locks (QEMU's
     * locking=auto uses them where it does): a test of a lock answers.
     */
    boolean works() {
        try {
            file.isByteLockedByOthers(PERM_BASE);
            return true;
        } catch (ErrnoException e) {
            return false;
        }
    }

    /**
     * Moves to {@code p}, as QEMU's raw_handle_perm_lock: first the union of
     * the old and the new locks is taken, so no other process slips in
     * between; then the new permissions are tested against the others'
     * locks; then the locks no longer needed are dropped. On a conflict the
     * old locks are restored and nothing changed.
     */
    void set(ImagePermissions p) throws BlockException {
        int oldHeld = held;
        int oldUnshared = unshared;
        try {
            apply(held | p.taken(), unshared | p.unshared());
            check(p);
        } catch (BlockException e) {
            try {
                apply(oldHeld, oldUnshared);
            } catch (BlockException ignored) {
                // The conflict is the error to report.
            }
            throw e;
        }
        apply(p.taken(), p.unshared());
    }

    /** What creating an image takes: write and resize, sharing everything but resize. */
    static void takeForCreate(PosixFile f, String path) throws BlockException {
        ImageLocks locks = new ImageLocks(f, path);
        locks.set(new ImagePermissions(ImagePermissions.WRITE | ImagePermissions.RESIZE,
                ImagePermissions.ALL & ~ImagePermissions.RESIZE));
    }

    private void apply(int wantHeld, int wantUnshared) throws BlockException {
        for (int bit = 0; bit < BITS; bit++) {
            int m = 1 << bit;
            held = change(held, wantHeld, m, PERM_BASE + bit);
            unshared = change(unshared, wantUnshared, m, SHARED_BASE + bit);
        }
    }

    private int change(int now, int want, int m, int offset) throws BlockException {
        try {
            if ((want & m) != 0 && (now & m) == 0) {
                file.lockSharedByte(offset);
                return now | m;
            }
            if ((want & m) == 0 && (now & m) != 0) {
                file.unlockByte(offset);
                return now & ~m;
            }
            return now;
        } catch (ErrnoException e) {
            String what = (want & m) != 0 ? "Failed to lock byte " : "Failed to unlock byte ";
            throw new BlockException(Errno.of(e.errno()), what + offset, e);
        }
    }

    /** raw_check_lock_bytes: a permission taken that another refuses, or one refused that another holds. */
    private void check(ImagePermissions p) throws BlockException {
        for (int bit = 0; bit < BITS; bit++) {
            int m = 1 << bit;
            if ((p.taken() & m) != 0 && lockedByOthers(SHARED_BASE + bit)) {
                throw conflict("Failed to get \"" + ImagePermissions.NAMES[bit] + "\" lock");
            }
        }
        for (int bit = 0; bit < BITS; bit++) {
            int m = 1 << bit;
            if ((p.unshared() & m) != 0 && lockedByOthers(PERM_BASE + bit)) {
                throw conflict("Failed to get shared \"" + ImagePermissions.NAMES[bit] + "\" lock");
            }
        }
    }

    /** As QEMU, a lock that cannot even be tested counts as held by someone else. */
    private boolean lockedByOthers(int offset) {
        try {
            return file.isByteLockedByOthers(offset);
        } catch (ErrnoException e) {
            return true;
        }
    }

    private BlockException conflict(String what) {
        return new BlockException(Errno.EAGAIN, what + "\nIs another process using the image [" + name + "]?");
    }

    /** Closes the descriptor, which drops every lock it holds. */
    @Override
    public void close() {
        file.close();
        held = 0;
        unshared = 0;
    }
}
