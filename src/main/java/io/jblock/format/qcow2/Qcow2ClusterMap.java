package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Guest offset to host offset: the L1 table (read whole at open) and L2 tables
 * (read in slices of at most 4 KiB, kept in a small LRU cache).
 *
 * <p>Thread-safe: many readers look up at once. The cache's map is guarded by
 * its own lock, never held during I/O; two readers that miss on the same slice
 * may both read it, which is harmless for a read-only image.
 */
final class Qcow2ClusterMap {
    /** Slices are at most a page, as QEMU's default l2-cache-entry-size keeps reads small. */
    private static final int MAX_SLICE_BYTES = 4096;
    /** 1 MiB of cached L2 slices, QEMU's default L2 cache size on Linux. */
    private static final int CACHE_BYTES = 1 << 20;

    private final Qcow2Geometry g;
    private final BlockNode file;
    private final long fileLength;
    private final long[] l1;
    private final int sliceBytes;
    private final int sliceEntries;
    private final Map<Long, long[]> cache;
    private final int capacity;

    /** A run of guest bytes that all read the same way. */
    record Extent(Qcow2L2Entry.Type type, long hostOffset, long length, long entry) {
    }

    Qcow2ClusterMap(Qcow2Geometry g, BlockNode file, long fileLength, long[] l1) {
        this.g = g;
        this.file = file;
        this.fileLength = fileLength;
        this.l1 = l1;
        this.sliceBytes = (int) Math.min(g.clusterSize(), MAX_SLICE_BYTES);
        this.sliceEntries = sliceBytes / g.l2EntrySize();
        int capacity = Math.max(4, CACHE_BYTES / sliceBytes);
        this.capacity = capacity;
        this.cache = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, long[]> eldest) {
                return size() > capacity;
            }
        };
    }

    /**
     * How the bytes from {@code offset} read, for at most {@code max} bytes:
     * a run of one type that stops at the end of an L2 slice, and, for data,
     * where the host offsets stop being contiguous. A compressed run is
     * always inside one cluster.
     */
    Extent lookup(long offset, long max) throws BlockException {
        long clusterOffset = offset & (g.clusterSize() - 1);
        int scShift = g.subclusterBits();
        long l1Index = offset >>> (g.clusterBits() + g.l2Bits());
        long l2Span = 1L << (g.clusterBits() + g.l2Bits());
        if (l1Index >= l1.length || (l1[(int) l1Index] & Qcow2L2Entry.OFFSET_MASK) == 0) {
            long toEnd = l2Span - (offset & (l2Span - 1));
            return new Extent(Qcow2L2Entry.Type.UNALLOCATED_PLAIN, 0, Math.min(max, toEnd), 0);
        }
        long l2Offset = l1[(int) l1Index] & Qcow2L2Entry.OFFSET_MASK;
        if ((l2Offset & (g.clusterSize() - 1)) != 0) {
            throw new BlockException.Corrupt("L2 table offset " + hex(l2Offset)
                    + " unaligned (L1 index: " + hex(l1Index) + ")");
        }
        if (l2Offset > fileLength - g.clusterSize()) {
            throw new BlockException.Corrupt("L2 table offset " + hex(l2Offset)
                    + " (L1 index: " + hex(l1Index)
                    + ") is past the end of the image file (length " + fileLength + ")");
        }
        int l2Index = (int) ((offset >>> g.clusterBits()) & (g.l2Entries() - 1));
        int sliceIndex = l2Index / sliceEntries;
        long[] slice = slice(l2Offset + (long) sliceIndex * sliceBytes);
        int i = l2Index % sliceEntries;
        int sc = (int) (clusterOffset >>> scShift);

        Extent first = null;
        int firstIndex = i;
        long length = 0;
        long expectedHost = 0;
        long pos = offset;
        while (length < max && i < sliceEntries) {
            long entry = slice[i * g.l2EntryWords()];
            long bitmap = g.extendedL2() ? slice[i * 2 + 1] : 0;
            Qcow2L2Entry.Type type = Qcow2L2Entry.type(entry, bitmap, sc, g.extendedL2(), g.externalData());
            long host = 0;
            switch (type) {
                case INVALID -> throw new BlockException.Corrupt("Invalid cluster entry found (L2 offset: "
                        + hex(l2Offset) + ", L2 index: "
                        + hex(sliceIndex * sliceEntries + i) + ")");
                case NORMAL, ZERO_ALLOC, UNALLOCATED_ALLOC -> {
                    long cluster = entry & Qcow2L2Entry.OFFSET_MASK;
                    if ((cluster & (g.clusterSize() - 1)) != 0) {
                        throw new BlockException.Corrupt("Cluster allocation offset " + hex(cluster)
                                + " unaligned (L2 offset: " + hex(l2Offset) + ", L2 index: "
                                + hex(sliceIndex * sliceEntries + i) + ")");
                    }
                    host = cluster + (pos & (g.clusterSize() - 1));
                }
                case ZERO_PLAIN, UNALLOCATED_PLAIN -> {
                }
                case COMPRESSED -> {
                    if (g.externalData()) {
                        throw new BlockException.Corrupt("Compressed cluster entry found in image with "
                                + "external data file (guest offset: " + hex(pos) + ")");
                    }
                }
            }
            if (type.isZero() && !g.zeroClustersAllowed()) {
                throw new BlockException.Corrupt("Zero cluster entry found in pre-v3 image (guest offset: "
                        + hex(pos) + ", L2 index: "
                        + hex(sliceIndex * sliceEntries + i) + ")");
            }
            if (first == null) {
                first = new Extent(type, host, 0, entry);
                expectedHost = host;
            } else if (type != first.type() || (type == Qcow2L2Entry.Type.COMPRESSED && i != firstIndex)
                    || (type == Qcow2L2Entry.Type.NORMAL && host != expectedHost)) {
                break;
            }
            long step = g.subclusterSize() - (pos & (g.subclusterSize() - 1));
            step = Math.min(step, max - length);
            length += step;
            pos += step;
            expectedHost += step;
            if (++sc == g.subclustersPerCluster()) {
                sc = 0;
                i++;
            }
        }
        return new Extent(first.type(), first.hostOffset(), length, first.entry());
    }

    /** C's {@code %#x}, as QEMU prints offsets and indexes in its corruption messages: 0 has no 0x. */
    static String hex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }

    private long[] slice(long at) throws BlockException {
        synchronized (cache) {
            long[] s = cache.get(at);
            if (s != null) {
                return s;
            }
        }
        ByteBuffer b = ByteBuffer.allocate(sliceBytes);
        file.read(at, b);
        long[] s = new long[sliceBytes / 8];
        b.flip();
        b.asLongBuffer().get(s);
        synchronized (cache) {
            cache.put(at, s);
        }
        return s;
    }

    int capacity() {
        return capacity;
    }

    /** How many L2 slices are cached now (for tests of the bound). */
    int cachedSlices() {
        synchronized (cache) {
            return cache.size();
        }
    }
}
