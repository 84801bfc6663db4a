package io.jblock.protocol;

import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;

/** {@code driver=memory,size=N}: a sparse disk in memory. */
public final class MemoryDriver implements BlockDriver {
    @Override
    public String name() {
        return "memory";
    }

    @Override
    public boolean isProtocol() {
        return true;
    }

    @Override
    public BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException {
        long size = options.takeUnsigned("size").orElseThrow(
                () -> new BlockException(Errno.EINVAL, "Parameter 'size' is missing"));
        options.take("filename"); // a memory disk has no file; a name given by habit is ignored
        return new MemoryNode(settings, size);
    }
}
