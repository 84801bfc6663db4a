package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.WriteFlags;
import io.jblock.format.qcow2.Qcow2CheckImage.ClusterType;

import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * The COPIED flag of every active L1 and L2 entry against the stored count
 * (QEMU's check_oflag_copied): set exactly when the count is 1. Run after the
 * counts were repaired; with -r leaks it repairs only when nothing else was
 * wrong, since only then are the counts known right.
 */
final class Qcow2CheckCopiedFlags {
    private Qcow2CheckCopiedFlags() {
    }


    static void check(Qcow2CheckImage img, Qcow2CheckResult res, Qcow2Check.Repair fix)
            throws Qcow2CheckFailed, BlockException {
        long[] l1 = img.l1;
        BlockNode file = img.file;
        Qcow2Header h = img.h;
        Consumer<String> report = img.report;
        Qcow2CheckStoredRefcounts stored = img.stored;
        Qcow2Geometry g = img.g;
        boolean dataFile = img.dataFile;
        int clusterBits = img.clusterBits;
        long clusterSize = img.clusterSize;
        boolean repair = fix.errors
                // After -r leaks the counts are right only if nothing else was wrong.
                || (fix.leaks && res.checkErrors == 0 && res.corruptions == 0 && res.leaks == 0);
        for (int i = 0; i < l1.length; i++) {
            long l1Entry = l1[i];
            long l2Offset = l1Entry & Qcow2CheckImage.L1_OFFSET_MASK;
            if (l2Offset == 0) {
                continue;
            }
            long refcount;
            try {
                refcount = stored.get(l2Offset >>> clusterBits);
            } catch (Qcow2CheckStoredRefcounts.Unreadable | BlockException e) {
                continue; // already reported by the comparison
            }
            if ((refcount == 1) != ((l1Entry & Qcow2L2Entry.COPIED) != 0)) {
                res.corruptions++;
                report.accept((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED L2 cluster: l1_index=" + i
                        + " l1_entry=" + Long.toHexString(l1Entry) + " refcount=" + Long.toUnsignedString(refcount));
                if (repair) {
                    l1[i] = refcount == 1 ? l1Entry | Qcow2L2Entry.COPIED : l1Entry & ~Qcow2L2Entry.COPIED;
                    try {
                        img.guardWrite(java.util.EnumSet.of(Qcow2CheckOverlap.Kind.ACTIVE_L1), h.l1TableOffset() + i * 8L,
                                8);
                        file.write(h.l1TableOffset() + i * 8L, ByteBuffer.allocate(8).putLong(0, l1[i]),
                                WriteFlags.NONE);
                        file.flush();
                    } catch (Qcow2CheckFailed f) {
                        res.checkErrors++;
                        throw f;
                    } catch (BlockException e) {
                        res.checkErrors++;
                        throw new Qcow2CheckFailed(e.errno());
                    }
                    res.corruptions--;
                    res.corruptionsFixed++;
                }
            }
            ByteBuffer t;
            try {
                t = Qcow2CheckImage.read(file, l2Offset, (int) clusterSize);
            } catch (BlockException e) {
                report.accept("ERROR: Could not read L2 table: " + e.errno().text());
                res.checkErrors++;
                throw new Qcow2CheckFailed(e.errno());
            }
            int dirty = 0;
            int entrySize = g.l2EntrySize();
            for (int j = 0; j < g.l2Entries(); j++) {
                long entry = t.getLong(j * entrySize);
                ClusterType type = img.type(entry);
                if (type != ClusterType.NORMAL && type != ClusterType.ZERO_ALLOC) {
                    continue;
                }
                long rc;
                if (dataFile) {
                    rc = 1;
                } else {
                    try {
                        rc = stored.get((entry & Qcow2L2Entry.OFFSET_MASK) >>> clusterBits);
                    } catch (Qcow2CheckStoredRefcounts.Unreadable | BlockException e) {
                        continue;
                    }
                }
                if ((rc == 1) != ((entry & Qcow2L2Entry.COPIED) != 0)) {
                    res.corruptions++;
                    report.accept((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED data cluster: l2_entry="
                            + Long.toHexString(entry) + " refcount=" + Long.toUnsignedString(rc));
                    if (repair) {
                        t.putLong(j * entrySize, rc == 1 ? entry | Qcow2L2Entry.COPIED
                                : entry & ~Qcow2L2Entry.COPIED);
                        dirty++;
                    }
                }
            }
            if (dirty > 0) {
                try {
                    img.guardWrite(java.util.EnumSet.of(Qcow2CheckOverlap.Kind.ACTIVE_L2), l2Offset, clusterSize);
                } catch (Qcow2CheckFailed f) {
                    report.accept("ERROR: Could not write L2 table; metadata overlap check failed: " + f.errno.text());
                    res.checkErrors++;
                    throw f;
                }
                try {
                    file.write(l2Offset, t.clear(), WriteFlags.NONE);
                } catch (BlockException e) {
                    report.accept("ERROR: Could not write L2 table: " + e.errno().text());
                    res.checkErrors++;
                    throw new Qcow2CheckFailed(e.errno());
                }
                res.corruptions -= dirty;
                res.corruptionsFixed += dirty;
            }
        }
    }
}
