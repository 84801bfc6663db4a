package io.jblock.format;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.DebugEvent;
import io.jblock.block.Errno;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The raw format: the bytes of its file child, optionally a window of them
 * ({@code offset}, {@code size}). Flags, FUA included, pass straight through.
 *
 * <p>A raw node whose format was probed rather than named refuses, with
 * EPERM as QEMU does, any write that would make its first
 * {@value FormatSignatures#PROBE_SIZE} bytes look like another format's
 * header: otherwise a guest could write a qcow2 header naming a backing file
 * of its choice, and the next probe would open that file for it. This is
 * what QEMU's warning "write operations on block 0 will be restricted"
 * means, and it holds for every user of the node (io, NBD exports, ...).
 */
public final class RawNode extends BlockNode {
    private final BlockNode file;
    private final long offset;
    /** Fixed size of the window, or -1 to follow the file's length. */
    private final long size;
    /** The format was guessed: writes to the probed bytes are checked. */
    private volatile boolean probed;
    /**
     * Serialises checked writes to the probed bytes, so two writes that are
     * harmless alone cannot together build a header between check and write.
     */
    private final ReentrantLock probedBytes = new ReentrantLock();

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

    /** Marks the node as opened by probing: from now on, writes that would change what a probe sees are refused. */
    public void markProbed() {
        probed = true;
    }

    /** Whether the format of this node was probed rather than named. */
    public boolean isProbed() {
        return probed;
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
        file.debugEvent(DebugEvent.READ_AIO); // as QEMU's raw_co_preadv, so blkdebug rules on read_aio fire
        file.read(adjust(off, dst.remaining()), dst);
    }

    @Override
    protected void doWrite(long off, ByteBuffer src, int flags) throws BlockException {
        long at = adjust(off, src.remaining());
        file.debugEvent(DebugEvent.WRITE_AIO); // as QEMU's raw_co_pwritev
        if (!touchesProbedBytes(off)) {
            file.write(at, src, flags);
            return;
        }
        probedBytes.lock();
        try {
            checkProbedBytes(off, src.duplicate());
            file.write(at, src, flags);
        } finally {
            probedBytes.unlock();
        }
    }

    @Override
    protected void doWriteZeroes(long off, long length, int flags) throws BlockException {
        long at = adjust(off, length);
        if (!touchesProbedBytes(off)) {
            file.writeZeroes(at, length, flags);
            return;
        }
        probedBytes.lock();
        try {
            int n = (int) Math.min(length, FormatSignatures.PROBE_SIZE - off);
            checkProbedBytes(off, ByteBuffer.allocate(n));
            file.writeZeroes(at, length, flags);
        } finally {
            probedBytes.unlock();
        }
    }

    private boolean touchesProbedBytes(long off) {
        return probed && off < FormatSignatures.PROBE_SIZE;
    }

    /**
     * Throws EPERM when writing {@code data} at {@code off} would make the
     * probed bytes name another format. Must hold {@link #probedBytes}.
     */
    private void checkProbedBytes(long off, ByteBuffer data) throws BlockException {
        int n = (int) Math.min(length(), FormatSignatures.PROBE_SIZE);
        byte[] head = new byte[n];
        file.read(offset, ByteBuffer.wrap(head));
        int len = (int) Math.min(data.remaining(), n - off);
        if (len > 0) {
            data.get(head, (int) off, len);
        }
        String format = FormatSignatures.formatOf(head);
        if (format != null) {
            throw new BlockException(Errno.EPERM, "write at offset " + off + " refused: the first "
                    + FormatSignatures.PROBE_SIZE + " bytes of this probed raw image would then look like a "
                    + format + " header");
        }
    }

    @Override
    protected void doDiscard(long off, long length) throws BlockException {
        file.discard(adjust(off, length), length);
    }

    @Override
    protected BlockStatus doBlockStatus(long off, long length) throws BlockException {
        BlockStatus s = file.blockStatus(adjust(off, length), length);
        return s.with((s.flags() & (BlockStatus.DATA | BlockStatus.ZERO)) | BlockStatus.ALLOCATED, 1);
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
