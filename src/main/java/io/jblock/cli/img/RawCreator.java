package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.Choice;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.options.DriverRegistry;

/**
 * Hands a raw image's creation to its protocol's
 * {@link io.jblock.block.BlockDriver#create}, as QEMU's raw format does:
 * the file protocol for files, host_device for character and block devices.
 * nocow (btrfs only) and extent_size_hint (XFS only) are accepted and, as
 * QEMU does on file systems without them, have no effect.
 */
final class RawCreator {
    private RawCreator() {
    }

    /**
     * Reads the protocol's options (size, preallocation) and creates the image.
     *
     * @param protocol "file" or "host_device"
     * @param path     the host path (any "file:" prefix removed)
     */
    static void create(String protocol, String path, CreateOptions options) throws BlockException {
        long size = options.size("size", 0);
        String preallocText = options.text("preallocation");
        Prealloc prealloc = preallocText == null ? Prealloc.OFF : Choice.parse(Prealloc.class, preallocText)
                .orElseThrow(() -> new BlockException(Errno.EINVAL, "invalid parameter value: " + preallocText));
        DriverRegistry.standard().find(protocol).orElseThrow().create(path, size, prealloc);
    }
}
