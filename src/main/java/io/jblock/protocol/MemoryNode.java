package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.Errno;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A disk in memory, for tests and scratch disks: sparse, in 64 KiB chunks
 * created on first write, so a large empty disk costs nothing. Unwritten
 * chunks are holes that read as zero and report ZERO in block status.
 */
public final class MemoryNode extends BlockNode {
    static final int CHUNK_SHIFT = 16;
    static final int CHUNK = 1 << CHUNK_SHIFT;

    private final ConcurrentHashMap<Long, byte[]> chunks = new ConcurrentHashMap<>();
    private volatile long length;

    public MemoryNode(NodeSettings settings, long length) {
        super("memory", settings);
        this.length = length;
    }

    /** A writable scratch disk of {@code length} bytes. */
    public static MemoryNode scratch(long length) {
        return new MemoryNode(NodeSettings.defaults(), length);
    }

    @Override
    public Capabilities capabilities() {
        return new Capabilities(false, true, true, 1, Capabilities.MAX_TRANSFER);
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    protected boolean hasMedium() {
        return true;
    }

    @Override
    protected void doRead(long offset, ByteBuffer dst) throws BlockException {
        int n = dst.remaining();
        if (offset + n > length) {
            throw new BlockException(Errno.EIO, "read past the end of memory disk: offset " + offset
                    + ", length " + n + ", disk length " + length);
        }
        int p = dst.position();
        long pos = offset;
        while (pos < offset + n) {
            long idx = pos >>> CHUNK_SHIFT;
            int within = (int) (pos & (CHUNK - 1));
            int k = (int) Math.min(CHUNK - within, offset + n - pos);
            byte[] c = chunks.get(idx);
            int at = p + (int) (pos - offset);
            if (c == null) {
                for (int i = 0; i < k; i++) {
                    dst.put(at + i, (byte) 0);
                }
            } else {
                dst.put(at, c, within, k);
            }
            pos += k;
        }
        dst.position(p + n);
    }

    @Override
    protected void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        int n = src.remaining();
        ensureInside(offset, n);
        int p = src.position();
        long pos = offset;
        while (pos < offset + n) {
            long idx = pos >>> CHUNK_SHIFT;
            int within = (int) (pos & (CHUNK - 1));
            int k = (int) Math.min(CHUNK - within, offset + n - pos);
            byte[] c = chunks.computeIfAbsent(idx, i -> new byte[CHUNK]);
            src.get(p + (int) (pos - offset), c, within, k);
            pos += k;
        }
        src.position(p + n);
    }

    @Override
    protected void doWriteZeroes(long offset, long len, int flags) throws BlockException {
        ensureInside(offset, len);
        long pos = offset;
        long end = offset + len;
        while (pos < end) {
            long idx = pos >>> CHUNK_SHIFT;
            int within = (int) (pos & (CHUNK - 1));
            int k = (int) Math.min(CHUNK - within, end - pos);
            if (k == CHUNK && WriteFlags.has(flags, WriteFlags.MAY_UNMAP)) {
                chunks.remove(idx);
            } else {
                byte[] c = chunks.get(idx);
                if (c != null) {
                    java.util.Arrays.fill(c, within, within + k, (byte) 0);
                }
            }
            pos += k;
        }
    }

    @Override
    protected void doDiscard(long offset, long len) throws BlockException {
        // Only whole chunks are released; a partial discard leaves the data (discard is advisory).
        long first = (offset + CHUNK - 1) >>> CHUNK_SHIFT;
        long end = (offset + len) >>> CHUNK_SHIFT;
        for (long i = first; i < end; i++) {
            chunks.remove(i);
        }
    }

    @Override
    protected void doTruncate(long newLength, boolean exact, Prealloc prealloc) throws BlockException {
        if (prealloc != Prealloc.OFF && prealloc != null) {
            throw new BlockException(Errno.ENOTSUP, "Unsupported preallocation mode '"
                    + prealloc.canonicalName() + "'");
        }
        long old = length;
        length = newLength;
        if (newLength < old) {
            // Drop and clear what lies past the new end, so growing again shows zeroes.
            long keep = newLength >>> CHUNK_SHIFT;
            chunks.keySet().removeIf(i -> i > keep);
            byte[] c = chunks.get(keep);
            if (c != null) {
                java.util.Arrays.fill(c, (int) (newLength & (CHUNK - 1)), CHUNK, (byte) 0);
            }
        }
    }

    @Override
    protected BlockStatus doBlockStatus(long offset, long len) {
        long pos = offset;
        long end = offset + len;
        boolean data = chunks.containsKey(pos >>> CHUNK_SHIFT);
        while (pos < end) {
            long idx = pos >>> CHUNK_SHIFT;
            if (chunks.containsKey(idx) != data) {
                break;
            }
            pos = (idx + 1) << CHUNK_SHIFT;
        }
        long run = Math.min(pos, end) - offset;
        int flags = BlockStatus.ALLOCATED | (data ? BlockStatus.DATA : BlockStatus.ZERO);
        return new BlockStatus(run, flags, 1, offset, this);
    }

    @Override
    public long allocatedSize() {
        return (long) chunks.size() * CHUNK;
    }

    private void ensureInside(long offset, long len) throws BlockException {
        if (offset + len > length) {
            throw new BlockException(Errno.ENOSPC, "write past the end of memory disk: offset " + offset
                    + ", length " + len + ", disk length " + length);
        }
    }
}
