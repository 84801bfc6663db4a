package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

import java.nio.ByteBuffer;

/**
 * QEMU's qcow2_update_snapshot_refcount, for internal snapshots: every
 * cluster an L1 table reaches (its L2 tables, and the data clusters those
 * map) gains {@code addend} references (+1 when a snapshot is taken, -1 when
 * one is deleted, 0 to only fix flags), and afterwards the COPIED flags of
 * the L2 entries and L1 entries walked are set exactly where the refcount is
 * 1. Compressed clusters count every host cluster their bytes touch and never
 * carry COPIED.
 *
 * <p>Runs under the image's metadata lock; L2 changes go through the L2 cache
 * (refcount blocks reach the file before them), an inactive L1 table is
 * rewritten whole at the end, the active one entry by entry.
 */
final class Qcow2SnapshotRefcounts {
    /** What snapshots free is discarded in the file as QEMU's pass-discard-snapshot says (on by default). */
    private static final Qcow2Refcounts.FreeReason SNAPSHOT = Qcow2Refcounts.FreeReason.SNAPSHOT;

    private final Qcow2Geometry g;
    private final BlockNode file;
    private final Qcow2ClusterMap map;
    private final Qcow2Refcounts refcounts;

    Qcow2SnapshotRefcounts(Qcow2Geometry g, BlockNode file, Qcow2ClusterMap map, Qcow2Refcounts refcounts) {
        this.g = g;
        this.file = file;
        this.map = map;
        this.refcounts = refcounts;
    }

    /**
     * {@code addend} more references to everything the L1 table at
     * {@code l1Offset} reaches, then exact COPIED flags. The active table is
     * taken from memory and its changed entries written one by one; an
     * inactive one is read from the file and, when a flag changed, written
     * back whole (only for addend &gt;= 0, as QEMU).
     */
    void update(long l1Offset, int l1Size, int addend) throws BlockException {
        boolean active = l1Offset == map.l1Offset();
        long[] l1;
        if (active) {
            l1 = map.l1Copy();
        } else {
            ByteBuffer b = ByteBuffer.allocate(l1Size * 8);
            file.read(l1Offset, b);
            l1 = new long[l1Size];
            b.flip();
            b.asLongBuffer().get(l1);
        }
        boolean l1Changed = walk(l1, addend, active);
        if (l1Changed && !active && addend >= 0) {
            refcounts.flush();
            ByteBuffer b = ByteBuffer.allocate(l1.length * 8);
            b.asLongBuffer().put(l1);
            file.write(l1Offset, b, 0);
        }
    }

    /**
     * Drops one reference from everything an L1 table held in memory reaches
     * (the active table apply just replaced, or a deleted snapshot's), fixing
     * COPIED in the L2 tables that stay; the L1 entries are not written back
     * (QEMU writes an L1 table back only for addend >= 0).
     */
    void release(long[] l1) throws BlockException {
        walk(l1, -1, false);
    }

    /**
     * The one walk: for each L2 table {@code l1} names, every entry's
     * clusters gain {@code addend} references (compressed ones: every host
     * cluster their bytes touch) and normal entries get exact COPIED flags;
     * then the L2 table itself gains them. An L2 table whose count reaches 0
     * leaves the cache, so a stale slice never outlives it; for the others
     * the L1 entry's COPIED flag is made exact in {@code l1}, and written to
     * the active table at once when {@code writeActive}. Returns whether an
     * L1 entry changed.
     */
    private boolean walk(long[] l1, int addend, boolean writeActive) throws BlockException {
        boolean l1Changed = false;
        for (int i = 0; i < l1.length; i++) {
            long l2 = l1[i] & Qcow2L2Entry.OFFSET_MASK;
            if (l2 == 0) {
                continue;
            }
            for (int j = 0; j < g.l2Entries(); j++) {
                Qcow2ClusterMap.Slot slot = map.slotInTable(l2, j);
                long entry = slot.entry();
                long updated = entry;
                if ((entry & Qcow2L2Entry.COMPRESSED) != 0) {
                    if (addend != 0) {
                        refcounts.update(Qcow2L2Entry.compressedOffset(entry, g.clusterBits()),
                                Qcow2L2Entry.compressedSize(entry, g.clusterBits()), addend, SNAPSHOT);
                    }
                } else {
                    long host = entry & Qcow2L2Entry.OFFSET_MASK;
                    if (host != 0) {
                        if (addend != 0) {
                            refcounts.update(host, g.clusterSize(), addend, SNAPSHOT);
                        }
                        updated = refcounts.refcount(host) == 1 ? entry | Qcow2L2Entry.COPIED
                                : entry & ~Qcow2L2Entry.COPIED;
                    }
                }
                if (updated != entry) {
                    slot = map.slotInTable(l2, j);
                    map.set(slot, updated, slot.bitmap(g));
                }
            }
            map.trim();
            if (addend != 0) {
                refcounts.update(l2, g.clusterSize(), addend, SNAPSHOT);
            }
            long count = refcounts.refcount(l2);
            if (count == 0) {
                map.forget(l2);
                continue;
            }
            long l1Entry = count == 1 ? l1[i] | Qcow2L2Entry.COPIED : l1[i] & ~Qcow2L2Entry.COPIED;
            if (l1Entry != l1[i]) {
                l1[i] = l1Entry;
                l1Changed = true;
                if (writeActive) {
                    map.writeDirty();
                    map.writeL1Entry(i, l1Entry);
                }
            }
        }
        map.writeDirty();
        return l1Changed;
    }
}
