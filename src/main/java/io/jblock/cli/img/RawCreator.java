package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.Choice;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.options.DriverRegistry;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Hands a raw image's creation to its protocol: the file protocol's
 * {@link io.jblock.block.BlockDriver#create} for files, and QEMU's
 * host_device rules (which jblock has no driver for yet) for devices.
 * nocow (btrfs only) and extent_size_hint (XFS only) are accepted and, as
 * QEMU does on file systems without them, have no effect.
 */
final class RawCreator {
    private RawCreator() {
    }

    /**
     * Reads the file protocol's options (size, preallocation) and creates the file.
     *
     * @param path the host path (any "file:" prefix removed)
     */
    static void create(String path, CreateOptions options) throws BlockException {
        long size = options.size("size", 0);
        String preallocText = options.text("preallocation");
        Prealloc prealloc = preallocText == null ? Prealloc.OFF : Choice.parse(Prealloc.class, preallocText)
                .orElseThrow(() -> invalidValue(preallocText));
        DriverRegistry.standard().find("file").orElseThrow().create(path, size, prealloc);
    }

    /**
     * "Creates" an image on a character or block device, as QEMU's
     * host_device protocol does: nothing is written; the device must already
     * be at least as large as asked, and nothing can be preallocated.
     */
    static void createOnDevice(String path, CreateOptions options) throws BlockException {
        String prealloc = options.text("preallocation");
        if (prealloc != null && !prealloc.equals("off")) {
            if (Choice.parse(Prealloc.class, prealloc).isEmpty()) {
                throw invalidValue(prealloc);
            }
            throw new BlockException(Errno.ENOTSUP, "Unsupported preallocation mode '" + prealloc + "'");
        }
        long size = options.size("size", 0);
        long deviceSize;
        try (var ch = FileChannel.open(Path.of(path), StandardOpenOption.WRITE)) {
            deviceSize = ch.size();
        } catch (IOException e) {
            throw new BlockException(Errno.EIO, "Could not open device: " + e.getMessage());
        }
        if (Long.compareUnsigned(size, deviceSize) > 0) {
            throw new BlockException(Errno.ENOSPC, "Cannot grow device files");
        }
    }

    /** QEMU's words for a value outside an enum's table (qapi_enum_parse). */
    private static BlockException invalidValue(String value) {
        return new BlockException(Errno.EINVAL, "invalid parameter value: " + value);
    }
}
