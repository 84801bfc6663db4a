package io.jblock.cli.io;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;

/**
 * QEMU's protection of a raw image whose format was guessed: a write that
 * would make its first sector look like another format's header (so that
 * the next probe opens it as, say, qcow2 with a backing file of the
 * writer's choosing) is refused with EPERM. That is what the probing
 * warning's "write operations on block 0 will be restricted" means.
 *
 * <p>jblock's raw node does not do this yet (reported); until it does,
 * qemu-io's writes are checked here. The formats jblock can probe are the
 * ones checked: qcow2, by its magic and version as QEMU's probe reads them.
 */
final class ProbedRawGuard {
    private static final int SECTOR = 512;
    private static final int QCOW2_MAGIC = 0x514649fb;

    private ProbedRawGuard() {
    }

    /** Whether the image was opened as raw because probing guessed so. */
    static boolean applies(ImageOpener.Request r, Drive drive) {
        return r.filename != null && !r.options.containsKey("driver") && !r.filename.startsWith("json:")
                && drive.root().driverName().equals("raw");
    }

    /** Throws EPERM when writing {@code data} at {@code offset} would give sector 0 a format's magic. */
    static void check(Drive drive, long offset, byte[] data) throws BlockException {
        if (offset >= SECTOR || data.length == 0) {
            return;
        }
        byte[] sector = new byte[SECTOR];
        long length = drive.length();
        int existing = (int) Math.min(SECTOR, length);
        drive.read(0, ByteBuffer.wrap(sector, 0, existing));
        int n = (int) Math.min(data.length, SECTOR - offset);
        System.arraycopy(data, 0, sector, (int) offset, n);
        ByteBuffer b = ByteBuffer.wrap(sector);
        // QEMU's qcow2 probe: the magic and a version of at least 2.
        if (b.getInt(0) == QCOW2_MAGIC && Integer.compareUnsigned(b.getInt(4), 2) >= 0) {
            throw new BlockException(Errno.EPERM, "writing a format header to a probed raw image");
        }
    }
}
