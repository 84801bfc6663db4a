package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.engine.ErrnoException;
import io.jblock.engine.PosixFile;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Image creation below the format, as QEMU's file-posix does it (its
 * bdrv_create for the file and host_device protocols).
 *
 * <p>On a regular file, step for step, because the result (length, which
 * blocks are allocated, which read as holes) is part of what users see:
 * <ol>
 *   <li>the size is rounded up to a 512-byte sector;</li>
 *   <li>the file is opened (created 0644 if missing), locked the way QEMU
 *       locks images ({@link ImageLocks}: an image another QEMU process is
 *       using is refused, not clobbered), and truncated to 0, so nothing of
 *       an old file survives;</li>
 *   <li>it is grown to the size: off grows with a hole; falloc reserves the
 *       blocks (posix_fallocate: allocated, but unwritten extents read as
 *       holes); full writes zeroes everywhere and syncs;</li>
 *   <li>for off and falloc, the first block is written with zeroes (512
 *       bytes for images under 4 KiB, else 4 KiB), as QEMU does so that a
 *       later open can probe the alignment; a failure there is ignored.</li>
 * </ol>
 * On a device nothing is written: it must already be as large as asked.
 */
final class FileCreation {
    private static final long SECTOR = 512;
    /** QEMU's MAX_BLOCKSIZE: the first block written on create is this, or one sector for smaller images. */
    private static final long FIRST_BLOCK = 4096;
    /** The size of each write of zeroes for preallocation=full, as QEMU's. */
    private static final int ZERO_CHUNK = 65536;

    private FileCreation() {
    }

    /**
     * Creates the image file; failures carry the errno (EFBIG when the file
     * system cannot hold the size) and QEMU's words: "Could not create 'NAME':
     * why", "Could not resize file: why", "Could not preallocate new data: why",
     * "Could not write zeros for preallocation: why", "Could not flush file to
     * disk: why", and the lock failures of {@link ImageLocks}.
     */
    static void createFile(String filename, long size, Prealloc preallocation) throws BlockException {
        long rounded = roundUpToSector(size);
        PosixFile f;
        try {
            f = PosixFile.openOrCreate(filename);
        } catch (ErrnoException e) {
            throw failure("Could not create '" + filename + "'", e);
        }
        try (f) {
            ImageLocks.takeForCreate(f, filename);
            resize(f, 0);
            switch (preallocation) {
                case OFF -> {
                    resize(f, rounded);
                    allocateFirstBlock(f, rounded);
                }
                case FALLOC -> {
                    if (rounded != 0) {
                        call(() -> f.preallocate(0, rounded), "Could not preallocate new data");
                        allocateFirstBlock(f, rounded);
                    }
                }
                case FULL -> {
                    resize(f, rounded);
                    call(() -> f.writeZeroes(0, rounded, ZERO_CHUNK), "Could not write zeros for preallocation");
                    call(f::sync, "Could not flush file to disk");
                }
                // Refused only now, as QEMU does: the file has been created and emptied already.
                case METADATA -> throw new BlockException(Errno.ENOTSUP, "Unsupported preallocation mode: metadata");
            }
        }
    }

    /** QEMU's ROUND_UP on an unsigned 64-bit size: the largest sizes wrap to negative, which ftruncate refuses. */
    static long roundUpToSector(long size) {
        return (size + SECTOR - 1) & ~(SECTOR - 1);
    }

    private static void resize(PosixFile f, long size) throws BlockException {
        call(() -> f.truncate(size), "Could not resize file");
    }

    /** Zeroes the first block, an optimisation for later opens: as in QEMU, its failure does not fail the creation. */
    private static void allocateFirstBlock(PosixFile f, long size) {
        if (size <= 0) {
            return;
        }
        long n = size < FIRST_BLOCK ? SECTOR : FIRST_BLOCK;
        try {
            f.writeZeroes(0, n, (int) n);
        } catch (ErrnoException ignored) {
            // Nothing to report: the image is complete without it.
        }
    }

    /** One step of creation: a system call that can fail. */
    private interface Step {
        void run() throws ErrnoException;
    }

    private static void call(Step step, String what) throws BlockException {
        try {
            step.run();
        } catch (ErrnoException e) {
            throw failure(what, e);
        }
    }

    /** QEMU's error_setg_errno: "what: strerror", keeping the errno (an unknown one becomes EIO). */
    private static BlockException failure(String what, ErrnoException e) {
        return new BlockException(Errno.of(e.errno()), what + ": " + e.reason(), e);
    }

    /**
     * "Creates" an image on a character or block device, as QEMU's
     * host_device protocol does: nothing is written; the device must already
     * be at least as large as asked, and nothing can be preallocated.
     */
    static void createOnDevice(String filename, long size, Prealloc preallocation) throws BlockException {
        if (preallocation != Prealloc.OFF) {
            throw new BlockException(Errno.ENOTSUP, "Unsupported preallocation mode '"
                    + preallocation.canonicalName() + "'");
        }
        long deviceSize;
        try (var ch = FileChannel.open(Path.of(filename), StandardOpenOption.WRITE)) {
            deviceSize = ch.size();
        } catch (IOException e) {
            throw new BlockException(Errno.EIO, "Could not open device: " + e.getMessage());
        }
        if (Long.compareUnsigned(size, deviceSize) > 0) {
            throw new BlockException(Errno.ENOSPC, "Cannot grow device files");
        }
    }
}
