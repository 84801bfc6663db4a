package io.jblock.format;

import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;

/** {@code driver=raw[,offset=N][,size=N]} over a file child. */
public final class RawDriver implements BlockDriver {
    @Override
    public String name() {
        return "raw";
    }

    @Override
    public boolean isProtocol() {
        return false;
    }

    @Override
    public BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException {
        long offset = options.takeUnsigned("offset").orElse(0L);
        long size = options.takeUnsigned("size").orElse(-1L);
        if (size >= 0 && size % 512 != 0) {
            // QEMU's raw driver keeps windows in whole sectors (raw_apply_options).
            throw new BlockException(Errno.EINVAL, "Specified size is not multiple of 512");
        }
        BlockNode file = context.openChild("file", options, settings);
        if (file == null) {
            throw new BlockException(Errno.EINVAL, "A block device must be specified for \"file\"");
        }
        try {
            return new RawNode(settings, file, offset, size);
        } catch (BlockException e) {
            file.close();
            throw e;
        }
    }
}
