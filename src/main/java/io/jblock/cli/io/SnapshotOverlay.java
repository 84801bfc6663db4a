package io.jblock.cli.io;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;

import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code -s} (snapshot) puts over the image: a throw-away layer that
 * takes every write, so the image itself is never changed. QEMU uses a
 * temporary qcow2 file with 64 KiB clusters; this layer keeps its clusters
 * in memory, with the same 64 KiB granularity so {@code map} and
 * {@code alloc} report the same allocation. It exists only until jblock's
 * own snapshot overlay is available through the drive opener.
 */
final class SnapshotOverlay extends BlockNode {
    static final int CLUSTER = 64 * 1024;

    private final BlockNode base;
    private final Map<Long, byte[]> clusters = new HashMap<>();
    private long length;
    /** How much of the image shows through: a shrink hides the rest for good, as a grow reads zeroes. */
    private long visibleBase;

    SnapshotOverlay(NodeSettings settings, BlockNode base) throws BlockException {
        super("qcow2", settings);
        this.base = base;
        this.length = base.length();
        this.visibleBase = length;
    }

    @Override
    public List<BlockChild> children() {
        return List.of(new BlockChild("backing", base));
    }

    @Override
    public Capabilities capabilities() {
        return new Capabilities(false, false, false, 1, Capabilities.MAX_TRANSFER);
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public NodeInfo info() {
        return new NodeInfo("qcow2", CLUSTER, 0, Map.of());
    }

    @Override
    protected synchronized void doRead(long offset, ByteBuffer dst) throws BlockException {
        while (dst.hasRemaining()) {
            long index = offset / CLUSTER;
            int in = (int) (offset % CLUSTER);
            int n = (int) Math.min(dst.remaining(), CLUSTER - in);
            byte[] c = clusters.get(index);
            if (c != null) {
                dst.put(c, in, n);
            } else {
                readBase(offset, dst.slice(dst.position(), n));
                dst.position(dst.position() + n);
            }
            offset += n;
        }
    }

    @Override
    protected synchronized void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        while (src.hasRemaining()) {
            long index = offset / CLUSTER;
            int in = (int) (offset % CLUSTER);
            int n = (int) Math.min(src.remaining(), CLUSTER - in);
            byte[] c = clusters.get(index);
            if (c == null) {
                // Copy on write: the rest of the cluster comes from the image.
                c = new byte[CLUSTER];
                readBase(index * CLUSTER, ByteBuffer.wrap(c));
                clusters.put(index, c);
            }
            src.get(c, in, n);
            offset += n;
        }
    }

    @Override
    protected synchronized BlockStatus doBlockStatus(long offset, long len) {
        long end = offset + len;
        boolean allocated = clusters.containsKey(offset / CLUSTER);
        long pos = (offset / CLUSTER + 1) * CLUSTER;
        while (pos < end && clusters.containsKey(pos / CLUSTER) == allocated) {
            pos += CLUSTER;
        }
        long run = Math.min(pos, end) - offset;
        return allocated ? new BlockStatus(run, BlockStatus.DATA | BlockStatus.ALLOCATED, 1)
                : new BlockStatus(run, 0, 2);
    }

    @Override
    protected synchronized void doTruncate(long newLength, boolean exact, Prealloc prealloc) {
        if (newLength < length) {
            clusters.keySet().removeIf(i -> i * CLUSTER >= newLength);
            long last = newLength / CLUSTER;
            byte[] c = clusters.get(last);
            if (c != null) {
                java.util.Arrays.fill(c, (int) (newLength % CLUSTER), CLUSTER, (byte) 0);
            }
        }
        length = newLength;
        visibleBase = Math.min(visibleBase, newLength);
    }

    /** Reads from the image what lies inside it; beyond its end (after a truncate) reads zero. */
    private void readBase(long offset, ByteBuffer dst) throws BlockException {
        long baseLength = Math.min(base.length(), visibleBase);
        int inside = (int) Math.max(0, Math.min(dst.remaining(), baseLength - offset));
        if (inside > 0) {
            base.read(offset, dst.slice(dst.position(), inside));
            dst.position(dst.position() + inside);
        }
        while (dst.hasRemaining()) {
            dst.put((byte) 0);
        }
    }
}
