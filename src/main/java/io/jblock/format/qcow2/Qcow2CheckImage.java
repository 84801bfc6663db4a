package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.Consumer;

/**
 * The image as one check sees it: the header, extensions, active L1 table
 * and snapshots the check started from, the stored refcounts, the refcount
 * table (which moves when the check rebuilds it), and the writes a repair
 * makes, each first put through QEMU's metadata overlap check.
 */
final class Qcow2CheckImage {
    static final long L1_RESERVED_MASK = 0x7f000000000001ffL;
    static final long L1_OFFSET_MASK = 0x00fffffffffffe00L;
    /** Where the incompatible feature bits are in a version 3 header. */
    static final int HEADER_INCOMPATIBLE = 72;

    final BlockNode file;
    final Qcow2Header h;
    final Qcow2Extensions ext;
    final long[] l1;
    final List<Qcow2Snapshots.Snapshot> snapshots;
    final Consumer<String> report;
    final int clusterBits;
    final long clusterSize;
    final Qcow2Geometry g;
    final boolean dataFile;
    final Qcow2CheckStoredRefcounts stored;
    final long snapshotsBytes;
    long reftableOffset;
    long reftableEntries;

    Qcow2CheckImage(BlockNode file, Qcow2Header h, Qcow2Extensions ext, long[] l1,
                    List<Qcow2Snapshots.Snapshot> snapshots, Consumer<String> report) throws BlockException {
        this.file = file;
        this.h = h;
        this.ext = ext;
        this.l1 = l1;
        this.snapshots = snapshots;
        this.report = report;
        this.clusterBits = h.clusterBits();
        this.clusterSize = h.clusterSize();
        this.g = Qcow2Geometry.of(h);
        this.dataFile = h.hasDataFile();
        this.reftableOffset = h.refcountTableOffset();
        this.reftableEntries = Integer.toUnsignedLong(h.refcountTableClusters()) << (clusterBits - 3);
        this.stored = new Qcow2CheckStoredRefcounts(file, clusterBits, h.refcountOrder(),
                Qcow2CheckStoredRefcounts.readTable(file, reftableOffset, reftableEntries), !file.isReadOnly(),
                report);
        this.snapshotsBytes = snapshotTableBytes();
    }

    long clusters(long bytes) {
        return (bytes + clusterSize - 1) >>> clusterBits;
    }

    /** QEMU's qcow2_get_cluster_type, at cluster level. */
    enum ClusterType { COMPRESSED, ZERO_PLAIN, ZERO_ALLOC, NORMAL, UNALLOCATED }

    ClusterType type(long entry) {
        if ((entry & Qcow2L2Entry.COMPRESSED) != 0) {
            return ClusterType.COMPRESSED;
        }
        if ((entry & Qcow2L2Entry.ZERO) != 0 && !g.extendedL2()) {
            return (entry & Qcow2L2Entry.OFFSET_MASK) != 0 ? ClusterType.ZERO_ALLOC : ClusterType.ZERO_PLAIN;
        }
        if ((entry & Qcow2L2Entry.OFFSET_MASK) == 0) {
            // Offset 0 is a real offset in an external data file, where COPIED marks an allocated cluster.
            return dataFile && (entry & Qcow2L2Entry.COPIED) != 0 ? ClusterType.NORMAL : ClusterType.UNALLOCATED;
        }
        return ClusterType.NORMAL;
    }

    /** The bytes of the snapshot table: every entry, each starting 8-byte aligned, the last one unpadded. */
    private long snapshotTableBytes() throws BlockException {
        long at = h.snapshotsOffset();
        long end = at;
        for (int i = 0; i < snapshots.size(); i++) {
            at = (at + 7) & ~7L;
            ByteBuffer fixed = read(file, at, 40);
            long extra = Integer.toUnsignedLong(fixed.getInt(36));
            end = at + 40 + extra + Short.toUnsignedInt(fixed.getShort(12)) + Short.toUnsignedInt(fixed.getShort(14));
            at = end;
        }
        return end - h.snapshotsOffset();
    }


    /**
     * Refuses a write onto metadata other than the kinds in {@code ignore}:
     * QEMU then marks the image corrupt (the header's corrupt bit) and stops
     * using it, so the repair fails with EIO. Returns normally when the
     * write is safe.
     */
    void guardWrite(java.util.Set<Qcow2CheckOverlap.Kind> ignore, long offset, long size)
            throws Qcow2CheckFailed, BlockException {
        Qcow2CheckOverlap.Kind hit = Qcow2CheckOverlap.find(layout(), ignore, offset, size);
        if (hit == null) {
            return;
        }
        stored.signal("Preventing invalid write on metadata (overlaps with " + hit.qemuName + ")", true);
        if (h.version() >= 3) {
            ByteBuffer b = ByteBuffer.allocate(8).putLong(0, h.incompatibleFeatures() | Qcow2Header.INCOMPAT_CORRUPT);
            file.write(HEADER_INCOMPATIBLE, b, WriteFlags.NONE);
            file.flush();
        }
        throw new Qcow2CheckFailed(Errno.EIO);
    }

    private Qcow2CheckOverlap.Layout layout() {
        return new Qcow2CheckOverlap.Layout(clusterSize, h.l1TableOffset(), l1, reftableOffset, reftableEntries,
                stored.table(), h.snapshotsOffset(), snapshotsBytes, snapshots, ext.bitmaps());
    }

    /** {@code n} bytes at {@code offset}; past the end of the file they read as zeroes. */
    static ByteBuffer read(BlockNode file, long offset, int n) throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(n);
        if (n > 0) {
            file.read(offset, b);
        }
        return b.clear();
    }

}
