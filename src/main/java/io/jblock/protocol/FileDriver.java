package io.jblock.protocol;

import io.jblock.block.AioMode;
import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Choice;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;
import io.jblock.block.Prealloc;
import io.jblock.engine.EngineFile;
import io.jblock.engine.ErrnoException;
import io.jblock.engine.IoEngine;
import io.jblock.engine.NotRegularFileException;
import io.jblock.engine.PosixFile;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;

/**
 * {@code driver=file,filename=PATH[,aio=threads|native|io_uring]}.
 *
 * <p>The engine is chosen here, in one place: the engine for the aio mode
 * asked for, or an error. Never a silent fall back to another engine, so a
 * user who asks for io_uring never measures threads by mistake.
 *
 * <p>Creating an image file follows QEMU's file protocol step for step,
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
 */
public final class FileDriver implements BlockDriver {
    private static final long SECTOR = 512;
    /** QEMU's MAX_BLOCKSIZE: the first block written on create is this, or one sector for smaller images. */
    private static final long FIRST_BLOCK = 4096;
    /** The size of each write of zeroes for preallocation=full, as QEMU's. */
    private static final int ZERO_CHUNK = 65536;

    @Override
    public String name() {
        return "file";
    }

    @Override
    public boolean isProtocol() {
        return true;
    }

    @Override
    public BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException {
        String filename = options.take("filename").orElseThrow(
                () -> new BlockException(Errno.EINVAL, "Parameter 'filename' is missing"));
        AioMode aio = AioMode.THREADS;
        String aioName = options.take("aio").orElse(null);
        if (aioName != null) {
            aio = Choice.parse(AioMode.class, aioName).orElseThrow(() -> invalidValue(aioName));
        }
        if (aio == AioMode.NATIVE && !settings.direct()) {
            throw new BlockException(Errno.EINVAL, "aio=native was specified, but it requires cache.direct=on, "
                    + "which was not specified.");
        }
        // Accepted and checked as QEMU does, with no effect yet: jblock takes no image locks, batches
        // no native AIO, and has no page cache to drop on migration.
        String locking = options.take("locking").orElse("auto");
        if (!locking.equals("on") && !locking.equals("off") && !locking.equals("auto")) {
            throw invalidValue(locking);
        }
        String maxBatch = options.take("aio-max-batch").orElse(null);
        if (maxBatch != null && !maxBatch.matches("[0-9]+|0[xX][0-9a-fA-F]+")) {
            throw new BlockException(Errno.EINVAL, "Parameter 'aio-max-batch' expects a number");
        }
        options.takeBool("drop-cache");
        options.takeBool("x-check-cache-dropped");
        IoEngine engine = context.engine(aio);
        if (!engine.name().equals(aio.canonicalName())) {
            throw new BlockException(Errno.ENOTSUP, "aio=" + aio.canonicalName() + " was specified, but the engine "
                    + "provided is '" + engine.name() + "'; jblock never falls back to another engine");
        }
        Path path = Path.of(filename);
        EngineFile f;
        try {
            f = engine.open(path, settings.readOnly(), settings.direct());
        } catch (NotRegularFileException e) {
            throw new BlockException(Errno.EINVAL, "'file' driver requires '" + filename
                    + "' to be a regular file");
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EINVAL.number() && settings.direct()) {
                throw new BlockException(Errno.EINVAL, "Could not open '" + filename
                        + "': filesystem does not support O_DIRECT", e);
            }
            // As QEMU: a read-only file system is reported as EACCES, with the OS's own words in the message.
            Errno errno = Errno.of(e.errno()) == Errno.EROFS ? Errno.EACCES : Errno.of(e.errno());
            throw new BlockException(errno, "Could not open '" + filename + "': " + e.reason(), e);
        } catch (IOException e) {
            throw new BlockException(FileNode.errnoOf(e), "Could not open '" + filename + "': " + reason(e), e);
        }
        return new FileNode(settings, path, f);
    }

    /**
     * Creates the image file; failures carry the errno (EFBIG when the file
     * system cannot hold the size) and QEMU's words: "Could not create 'NAME':
     * why", "Could not resize file: why", "Could not preallocate new data: why",
     * "Could not write zeros for preallocation: why", "Could not flush file to
     * disk: why", and the lock failures of {@link ImageLocks}.
     */
    @Override
    public void create(String filename, long size, Prealloc preallocation) throws BlockException {
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

    /** QEMU's words for a value outside an enum's table (qapi_enum_parse). */
    private static BlockException invalidValue(String value) {
        return new BlockException(Errno.EINVAL, "invalid parameter value: " + value);
    }

    /** strerror's text alone, without the path the JDK puts in front of it. */
    private static String reason(IOException e) {
        if (e instanceof FileSystemException fse && fse.getReason() != null) {
            return fse.getReason();
        }
        return String.valueOf(e.getMessage());
    }
}
