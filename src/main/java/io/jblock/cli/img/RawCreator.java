package io.jblock.cli.img;

import io.jblock.block.Choice;
import io.jblock.block.Prealloc;

/**
 * Creates a raw image file as QEMU's file protocol does, step for step,
 * because the result (length, which blocks are allocated, which read as
 * holes) is part of what users see:
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
 * nocow (btrfs only) and extent_size_hint (XFS only) are accepted and, as
 * QEMU does on file systems without them, have no effect.
 */
final class RawCreator {
    /** Why creation failed; {@code tooLarge} when the file system said EFBIG. */
    static final class Failed extends Exception {
        private final boolean tooLarge;

        Failed(String message, boolean tooLarge) {
            super(message, null, false, false);
            this.tooLarge = tooLarge;
        }

        boolean tooLarge() {
            return tooLarge;
        }
    }

    private static final int EFBIG = 27;
    private static final long SECTOR = 512;
    /** QEMU's MAX_BLOCKSIZE: the first block written on create is this, or one sector for smaller images. */
    private static final long FIRST_BLOCK = 4096;
    /** The size of each write of zeroes for preallocation=full, as QEMU's. */
    private static final int ZERO_CHUNK = 65536;

    private RawCreator() {
    }

    /**
     * Reads the file protocol's options (size, preallocation) and creates the file.
     *
     * @param path the host path (any "file:" prefix removed)
     */
    static void create(String path, CreateOptions options) throws Failed {
        long size = roundUpToSector(options.size("size", 0));
        String preallocText = options.text("preallocation");
        Prealloc prealloc = preallocText == null ? Prealloc.OFF : Choice.parse(Prealloc.class, preallocText)
                .orElseThrow(() -> new Failed("invalid parameter value: " + preallocText, false));
        try (HostFile f = HostFile.create(path)) {
            ImageLocks.takeForCreate(f, path);
            f.truncate(0, "Could not resize file");
            switch (prealloc) {
                case OFF -> {
                    f.truncate(size, "Could not resize file");
                    allocateFirstBlock(f, size);
                }
                case FALLOC -> {
                    if (size != 0) {
                        f.fallocate(0, size, "Could not preallocate new data");
                        allocateFirstBlock(f, size);
                    }
                }
                case FULL -> {
                    f.truncate(size, "Could not resize file");
                    f.writeZeroes(0, size, ZERO_CHUNK, "Could not write zeros for preallocation");
                    f.sync("Could not flush file to disk");
                }
                case METADATA -> throw new Failed("Unsupported preallocation mode: metadata", false);
            }
        } catch (HostFile.CallFailed e) {
            throw new Failed(e.getMessage(), e.errno() == EFBIG);
        }
    }

    /**
     * "Creates" an image on a character or block device, as QEMU's
     * host_device protocol does: nothing is written; the device must already
     * be at least as large as asked, and nothing can be preallocated.
     */
    static void createOnDevice(String path, CreateOptions options) throws Failed {
        String prealloc = options.text("preallocation");
        if (prealloc != null && !prealloc.equals("off")) {
            if (Choice.parse(Prealloc.class, prealloc).isEmpty()) {
                throw new Failed("invalid parameter value: " + prealloc, false);
            }
            throw new Failed("Unsupported preallocation mode '" + prealloc + "'", false);
        }
        long size = options.size("size", 0);
        long deviceSize;
        try (var ch = java.nio.channels.FileChannel.open(java.nio.file.Path.of(path),
                java.nio.file.StandardOpenOption.WRITE)) {
            deviceSize = ch.size();
        } catch (java.io.IOException e) {
            throw new Failed("Could not open device: " + e.getMessage(), false);
        }
        if (Long.compareUnsigned(size, deviceSize) > 0) {
            throw new Failed("Cannot grow device files", false);
        }
    }

    /** QEMU's ROUND_UP on an unsigned 64-bit size: the largest sizes wrap to negative, which ftruncate refuses. */
    static long roundUpToSector(long size) {
        return (size + SECTOR - 1) & ~(SECTOR - 1);
    }

    private static void allocateFirstBlock(HostFile f, long size) {
        if (size <= 0) {
            return;
        }
        long n = size < FIRST_BLOCK ? SECTOR : FIRST_BLOCK;
        try {
            f.writeZeroes(0, n, (int) n, "Could not allocate the first block");
        } catch (HostFile.CallFailed ignored) {
            // An optimisation for later opens, as in QEMU: its failure does not fail the creation.
        }
    }
}
