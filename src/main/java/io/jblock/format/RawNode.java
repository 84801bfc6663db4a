package io.jblock.format;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.Errno;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * The raw format: the bytes of its file child, optionally a window of them
 * ({@code offset}, {@code size}). Flags, FUA included, pass straight through.
 */
public final class RawNode extends BlockNode {
    private final BlockNode file;
    private final long offset;
    /** Fixed size of the window, or -1 to follow the file's length. */
    private final long size;

    public RawNode(NodeSettings settings, BlockNode file, long offset, long size) throws BlockException {
        super("raw", settings);
        this.file = file;
        this.offset = offset;
        this.size = size;
        long fileLength = file.length();
        if (offset > fileLength) {
            throw new BlockException(Errno.EINVAL, "Offset (" + offset
                    + ") cannot be greater than size of the containing file (" + fileLength + ")");
        }
        if (size >= 0 && fileLength - offset < size) {
            throw new BlockException(Errno.EINVAL, "The sum of offset (" + offset + ") and size (" + size
                    + ") has to be smaller or equal to the  actual size of the containing file ("
                    + fileLength + ")");
        }
    }

    /** A raw node over all of {@code file}. */
    public static RawNode over(BlockNode file) throws BlockException {
        return new RawNode(NodeSettings.defaults().withReadOnly(file.isReadOnly())
                .withNoFlush(file.settings().noFlush()).withDirect(file.settings().direct()), file, 0, -1);
    }

    @Override
    public List<BlockChild> children() {
        return List.of(new BlockChild("file", file));
    }

    @Override
    public Capabilities capabilities() {
        return file.capabilities();
    }

    @Override
    public long length() throws BlockException {
        return size >= 0 ? size : Math.max(0, file.length() - offset);
    }

    @Override
    protected void doRead(long off, ByteBuffer dst) throws BlockException {
        file.read(adjust(off, dst.remaining()), dst);
    }

    @Override
    protected void doWrite(long off, ByteBuffer src, int flags) throws BlockException {
        file.write(adjust(off, src.remaining()), src, flags);
    }

    @Override
    protected void doWriteZeroes(long off, long length, int flags) throws BlockException {
        file.writeZeroes(adjust(off, length), length, flags);
    }

    @Override
    protected void doDiscard(long off, long length) throws BlockException {
        file.discard(adjust(off, length), length);
    }

    @Override
    protected BlockStatus doBlockStatus(long off, long length) throws BlockException {
        BlockStatus s = file.blockStatus(adjust(off, length), length);
        return new BlockStatus(s.length(), (s.flags() & (BlockStatus.DATA | BlockStatus.ZERO))
                | BlockStatus.ALLOCATED, 1);
    }

    @Override
    protected void doTruncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        if (size >= 0) {
            throw new BlockException(Errno.ENOTSUP, "Cannot resize fixed-size raw disks");
        }
        file.truncate(offset + length, exact, prealloc);
    }

    @Override
    public NodeInfo info() {
        return NodeInfo.simple("raw");
    }

    /** QEMU's rule: past a fixed window is ENOSPC, since the node is only part of its file. */
    private long adjust(long off, long length) throws BlockException {
        if (size >= 0 && (off > size || length > size - off)) {
            throw new BlockException(Errno.ENOSPC, "request outside the raw window: offset " + off
                    + ", length " + length + ", window size " + size);
        }
        return offset + off;
    }
}
