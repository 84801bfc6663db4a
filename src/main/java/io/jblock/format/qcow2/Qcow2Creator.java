package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.ImageCreation;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;
import io.jblock.engine.ThreadsEngine;
import io.jblock.protocol.FileDriver;
import io.jblock.protocol.FileNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Creates a qcow2 image as QEMU 7.2's qcow2_co_create_opts and
 * qcow2_co_create do, step for step, since both the messages and the bytes
 * of the file are what users compare:
 * <ol>
 *   <li>the file is created empty by the file protocol (and so is the
 *       external data file, if any);</li>
 *   <li>the options are checked ({@link Qcow2CreateSpec}); a failure from
 *       here on deletes what was created;</li>
 *   <li>the metadata is laid out by {@link Qcow2CreateLayout}: header,
 *       refcount table and block, the L1 table for the size, and what the
 *       preallocation mode asks for;</li>
 *   <li>the header, with its extensions and the backing file name, is
 *       written last ({@link Qcow2CreateHeader}).</li>
 * </ol>
 */
public final class Qcow2Creator {
    private Qcow2Creator() {
    }

    /**
     * Creates the image at {@code filename} (a host path); the options are
     * qcow2's {@code -o} names with their text.
     */
    public static void create(String filename, ImageCreation request) throws BlockException {
        FileDriver protocol = new FileDriver();
        protocol.create(filename, ImageCreation.of(0, Prealloc.OFF));
        String dataFile = request.option("data_file");
        boolean dataCreated = false;
        try {
            if (dataFile != null) {
                protocol.create(dataFile, ImageCreation.of(0, Prealloc.OFF));
                dataCreated = true;
            }
            Qcow2CreateSpec spec = Qcow2CreateSpec.parse(request);
            write(filename, spec);
            spec.checkEncryption();
        } catch (BlockException | RuntimeException e) {
            deleteQuietly(filename);
            if (dataCreated) {
                deleteQuietly(dataFile);
            }
            throw e;
        }
    }

    private static void write(String filename, Qcow2CreateSpec s) throws BlockException {
        try (FileNode file = openFile(filename);
             FileNode data = s.dataFile() == null ? null : openFile(s.dataFile())) {
            Qcow2CreateLayout layout = new Qcow2CreateLayout(file, s.clusterBits(), s.refcountOrder(),
                    s.extendedL2());
            layout.start();
            try {
                checkLength(s.size());
                layout.growL1(layout.l1EntriesFor(s.size()));
                switch (s.preallocation()) {
                    case OFF -> {
                        if (data != null) {
                            data.truncate(s.size(), false, Prealloc.OFF);
                            allocateFirstBlock(data, s.size());
                        }
                    }
                    case METADATA, FALLOC, FULL -> {
                        if (data != null) {
                            layout.preallocateExternal(s.size(), data, s.preallocation());
                        } else if (s.preallocation() == Prealloc.METADATA) {
                            layout.preallocateMetadata(s.size());
                        } else {
                            layout.preallocateData(s.size(), s.preallocation());
                        }
                    }
                }
            } catch (BlockException e) {
                if (e.errno() == Errno.EFBIG && e.getMessage().startsWith("Failed to grow the L1 table")) {
                    // qemu-img words this one itself, naming the format (see the img create command).
                    throw e;
                }
                throw new BlockException(e.errno(), "Could not resize image: " + e.getMessage(), e);
            }
            layout.finish();
            Qcow2CreateHeader.Fields fields = new Qcow2CreateHeader.Fields(s.version(), s.clusterBits(), s.size(),
                    layout.l1Size(), layout.l1Offset(), layout.refcountTableOffset(),
                    layout.refcountTableClusters(), s.incompatibleFeatures(), s.compatibleFeatures(),
                    s.autoclearFeatures(), s.refcountOrder(), s.compressionType(), s.backingFile(),
                    s.backingFormat(), s.dataFile());
            // QEMU refuses a name over 1023 bytes, and one that does not fit in the header cluster.
            if (s.backingFile() != null && s.backingFile().length() > 1023) {
                throw new BlockException(Errno.EINVAL, "Could not assign backing file '" + s.backingFile()
                        + "' with format '" + s.backingFormat() + "': Invalid argument");
            }
            if (s.backingFile() != null && !Qcow2CreateHeader.fits(fields)) {
                throw new BlockException(Errno.ENOSPC, "Could not assign backing file '" + s.backingFile()
                        + "' with format '" + s.backingFormat() + "': No space left on device");
            }
            file.write(0, Qcow2CreateHeader.render(fields), 0);
            file.flush();
            if (data != null) {
                data.flush();
            }
        }
    }

    /**
     * QEMU's file protocol zeroes the first block of a file it grows from
     * nothing without preallocation (so that a later open can probe the
     * alignment); the external data file, grown that way, gets it too.
     * FileNode's truncate does not do this yet, so it is done here.
     */
    static void allocateFirstBlock(io.jblock.block.BlockNode data, long size) throws BlockException {
        if (size <= 0) {
            return;
        }
        int n = (int) Math.min(size < 4096 ? 512 : 4096, size);
        data.write(0, java.nio.ByteBuffer.allocate(n), 0);
    }

    /** QEMU's BDRV_MAX_LENGTH: the largest length its block layer accepts, INT64_MAX down to a GiB. */
    private static final long MAX_LENGTH = Long.MAX_VALUE / (1L << 30) * (1L << 30);

    /** The block layer's checks of a new length, before the format sees it (bdrv_co_truncate). */
    private static void checkLength(long size) throws BlockException {
        if (size < 0) {
            throw new BlockException(Errno.EINVAL, "Image size cannot be negative");
        }
        if (size > MAX_LENGTH) {
            throw new BlockException(Errno.EFBIG, "offset(" + size + ") exceeds maximum(" + MAX_LENGTH + ")");
        }
    }

    private static FileNode openFile(String filename) throws BlockException {
        Path path = Path.of(filename);
        try {
            return new FileNode(NodeSettings.defaults(), path, ThreadsEngine.INSTANCE.open(path, false, false));
        } catch (IOException e) {
            throw BlockException.io("Could not open '" + filename + "'", e);
        }
    }

    private static void deleteQuietly(String filename) {
        try {
            Files.deleteIfExists(Path.of(filename));
        } catch (IOException ignored) {
            // As QEMU's bdrv_co_delete_file_noerr: the creation's own error is the one reported.
        }
    }
}
