package io.jblock.format.qcow2;

import java.util.List;

/**
 * QEMU's metadata overlap check, made before a repair writes: a write that
 * would land on the header, an L1, L2 or refcount table, a refcount block,
 * the snapshot table or the bitmap directory is refused. This is what keeps
 * a damaged image (an L2 entry naming the refcount table, say) from making
 * the repair overwrite metadata. The kinds are checked in QEMU's order, and
 * the first hit is named as QEMU names it; a write is never checked against
 * the kind of table it writes ({@code ignore}). Inactive L2 tables are not
 * checked, as under QEMU's default overlap-check=cached.
 */
final class Qcow2CheckOverlap {
    enum Kind {
        MAIN_HEADER("qcow2_header"), ACTIVE_L1("active L1 table"), ACTIVE_L2("active L2 table"),
        REFCOUNT_TABLE("refcount table"), REFCOUNT_BLOCK("refcount block"), SNAPSHOT_TABLE("snapshot table"),
        INACTIVE_L1("inactive L1 table"), INACTIVE_L2("inactive L2 table"), BITMAP_DIRECTORY("bitmap directory");

        final String qemuName;

        Kind(String qemuName) {
            this.qemuName = qemuName;
        }
    }

    /** The image's metadata as the check knows it now. */
    record Layout(long clusterSize, long l1Offset, long[] l1, long reftableOffset, long reftableEntries,
                  long[] reftable, long snapshotsOffset, long snapshotsBytes, List<Qcow2Snapshots.Snapshot> snapshots,
                  Qcow2Extensions.Bitmaps bitmaps) {
    }

    private Qcow2CheckOverlap() {
    }

    /** The first kind of metadata {@code [offset, offset + size)} overlaps, or null. */
    static Kind find(Layout m, java.util.Set<Kind> ignore, long offset, long size) {
        long cs = m.clusterSize();
        if (!ignore.contains(Kind.MAIN_HEADER) && offset < cs) {
            return Kind.MAIN_HEADER;
        }
        // Whole clusters are compared.
        long end = (offset + size + cs - 1) & -cs;
        offset &= -cs;
        size = end - offset;
        if (!ignore.contains(Kind.ACTIVE_L1) && m.l1().length > 0
                && overlaps(offset, size, m.l1Offset(), m.l1().length * 8L)) {
            return Kind.ACTIVE_L1;
        }
        if (!ignore.contains(Kind.REFCOUNT_TABLE) && m.reftableEntries() > 0
                && overlaps(offset, size, m.reftableOffset(), m.reftableEntries() * 8)) {
            return Kind.REFCOUNT_TABLE;
        }
        if (!ignore.contains(Kind.SNAPSHOT_TABLE) && m.snapshotsBytes() > 0
                && overlaps(offset, size, m.snapshotsOffset(), m.snapshotsBytes())) {
            return Kind.SNAPSHOT_TABLE;
        }
        if (!ignore.contains(Kind.INACTIVE_L1)) {
            for (Qcow2Snapshots.Snapshot sn : m.snapshots()) {
                if (sn.l1Size() != 0
                        && overlaps(offset, size, sn.l1TableOffset(), Integer.toUnsignedLong(sn.l1Size()) * 8)) {
                    return Kind.INACTIVE_L1;
                }
            }
        }
        if (!ignore.contains(Kind.ACTIVE_L2)) {
            for (long e : m.l1()) {
                long l2 = e & Qcow2CheckImage.L1_OFFSET_MASK;
                if (l2 != 0 && overlaps(offset, size, l2, cs)) {
                    return Kind.ACTIVE_L2;
                }
            }
        }
        if (!ignore.contains(Kind.REFCOUNT_BLOCK)) {
            for (long e : m.reftable()) {
                long block = e & Qcow2CheckStoredRefcounts.OFFSET_MASK;
                if (block != 0 && overlaps(offset, size, block, cs)) {
                    return Kind.REFCOUNT_BLOCK;
                }
            }
        }
        if (!ignore.contains(Kind.BITMAP_DIRECTORY) && m.bitmaps() != null
                && overlaps(offset, size, m.bitmaps().directoryOffset(), m.bitmaps().directorySize())) {
            return Kind.BITMAP_DIRECTORY;
        }
        return null;
    }

    private static boolean overlaps(long offset, long size, long otherOffset, long otherSize) {
        if (size == 0 || otherSize == 0) {
            return false;
        }
        // Unsigned: offsets from a damaged image may be anything.
        long last = offset + size - 1;
        long otherLast = otherOffset + otherSize - 1;
        return Long.compareUnsigned(offset, otherLast) <= 0 && Long.compareUnsigned(otherOffset, last) <= 0;
    }
}
