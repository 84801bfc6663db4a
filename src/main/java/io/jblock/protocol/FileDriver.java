package io.jblock.protocol;

import io.jblock.block.AioMode;
import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Choice;
import io.jblock.block.Errno;
import io.jblock.block.ImageCreation;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;
import io.jblock.block.Prealloc;
import io.jblock.engine.EngineFile;
import io.jblock.engine.ErrnoException;
import io.jblock.engine.IoEngine;
import io.jblock.engine.NotDeviceException;
import io.jblock.engine.NotRegularFileException;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;

/**
 * {@code driver=file,filename=PATH[,aio=threads|native|io_uring][,locking=auto|on|off]}.
 *
 * <p>The engine is chosen here, in one place: the engine for the aio mode
 * asked for, or an error. Never a silent fall back to another engine, so a
 * user who asks for io_uring never measures threads by mistake.
 *
 * <p>{@code locking=auto|on|off}: QEMU's image locks (see {@link ImageLocks}).
 * The node opens a descriptor of its own for them; the graph sets them once
 * it is complete, from what the tool does with the image and shares
 * ({@link FileNode#lockImage}). auto locks where the file system has open
 * file description locks, on always, off never (and then nothing keeps a
 * QEMU process or another jblock off the image).
 *
 * <p>{@link #hostDevice()} is QEMU's host_device: the same options on a
 * character or block device, which the file protocol refuses.
 */
public final class FileDriver implements BlockDriver {
    private final boolean hostDevice;

    /** The file protocol: regular files only. */
    public FileDriver() {
        this(false);
    }

    private FileDriver(boolean hostDevice) {
        this.hostDevice = hostDevice;
    }

    /** QEMU's host_device protocol: character and block devices only. */
    public static FileDriver hostDevice() {
        return new FileDriver(true);
    }

    /**
     * QEMU's hdev_probe_device: a name that is a character or block device is
     * opened through host_device when no protocol is named. Anything that
     * cannot be stat'ed is not a device (the open then reports why).
     */
    public static boolean isHostDevice(String path) {
        try {
            int mode = (Integer) java.nio.file.Files.getAttribute(java.nio.file.Path.of(path), "unix:mode");
            int type = mode & 0170000; // S_IFMT
            return type == 0020000 || type == 0060000; // S_IFCHR, S_IFBLK
        } catch (java.io.IOException | RuntimeException e) {
            return false;
        }
    }

    @Override
    public String name() {
        return hostDevice ? "host_device" : "file";
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
        String locking = options.take("locking").orElse("auto");
        if (!locking.equals("on") && !locking.equals("off") && !locking.equals("auto")) {
            throw invalidValue(locking);
        }
        // Accepted and checked as QEMU does, with no effect yet: jblock batches no native AIO, and has no
        // page cache to drop on migration.
        String maxBatch = options.take("aio-max-batch").orElse(null);
        if (maxBatch != null && !maxBatch.matches("[0-9]+|0[xX][0-9a-fA-F]+")) {
            throw new BlockException(Errno.EINVAL, "Parameter 'aio-max-batch' expects a number");
        }
        options.takeBool("drop-cache");
        options.takeBool("x-check-cache-dropped");
        IoEngine engine = context.engine(aio);
        // jblock serves aio=native with its io_uring engine: QEMU's Linux AIO is not implemented.
        String expectedEngine = aio == AioMode.NATIVE ? AioMode.IO_URING.canonicalName() : aio.canonicalName();
        if (!engine.name().equals(expectedEngine)) {
            throw new BlockException(Errno.ENOTSUP, "aio=" + aio.canonicalName() + " was specified, but the engine "
                    + "provided is '" + engine.name() + "'; jblock never falls back to another engine");
        }
        Path path = Path.of(filename);
        EngineFile f;
        try {
            f = hostDevice ? engine.openDevice(path, settings.readOnly(), settings.direct())
                    : engine.open(path, settings.readOnly(), settings.direct());
        } catch (NotRegularFileException e) {
            throw new BlockException(Errno.EINVAL, "'file' driver requires '" + filename
                    + "' to be a regular file");
        } catch (NotDeviceException e) {
            throw new BlockException(Errno.EINVAL, "'host_device' driver requires '" + filename
                    + "' to be either a character or block device");
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
        ImageLocks locks;
        try {
            locks = lockingFor(locking, filename);
        } catch (BlockException e) {
            closeQuietly(f);
            throw e;
        }
        return new FileNode(settings, path, f, locks);
    }

    /**
     * The descriptor for the image locks, which the graph sets once it is
     * complete (see {@link FileNode#lockImage}): none with locking=off;
     * with auto, none where the file system has no open file description
     * locks (QEMU's auto uses them where they work).
     */
    private static ImageLocks lockingFor(String locking, String filename) throws BlockException {
        if (locking.equals("off")) {
            return null;
        }
        ImageLocks locks = ImageLocks.open(filename, filename);
        if (locking.equals("auto") && !locks.works()) {
            locks.close();
            return null;
        }
        return locks;
    }

    private static void closeQuietly(EngineFile f) {
        try {
            f.close();
        } catch (IOException ignored) {
            // The lock failure is the error to report.
        }
    }

    /**
     * Creates the image: on a regular file as QEMU's file protocol does, on a
     * device as its host_device protocol does (see {@link FileCreation}).
     */
    @Override
    public void create(String filename, ImageCreation request) throws BlockException {
        long size = request.size();
        Prealloc preallocation = request.preallocation();
        if (hostDevice) {
            FileCreation.createOnDevice(filename, size, preallocation);
        } else {
            FileCreation.createFile(filename, size, preallocation);
        }
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
