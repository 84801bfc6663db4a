package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeSettings;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.Consumer;

/**
 * The snapshot table in a check, as QEMU 7.2's qcow2 check treats it: read
 * first, before the refcounts, with the limits the open left to the check
 * (too many snapshots, a table too big, too much extra data in an entry);
 * then, with {@code -r all}, repaired:
 *
 * <ul>
 *   <li>snapshots over the count limit, or past the table size limit, are cut
 *       off the end, and the header's count is lowered at once: their
 *       clusters leak, and the refcount check that follows frees them;</li>
 *   <li>extra data over its limit is cut, and version 3 entries without a
 *       disk size ("incomplete") are completed: both need the table written
 *       anew, which takes cluster allocation, so it is done last, once the
 *       refcounts are repaired.</li>
 * </ul>
 * A table that cannot be read (or, without {@code -r all}, one that would
 * need those repairs) fails the check, with QEMU's message and errno.
 */
final class Qcow2CheckSnapshotTable {
    private Qcow2CheckSnapshotTable() {
    }

    /** Header offset of nb_snapshots (u32). */
    private static final int HEADER_NB_SNAPSHOTS = 60;

    /**
     * What the first step read: the snapshots the check goes on with, and
     * the corruptions found in the table that only rewriting it repairs.
     */
    record Read(List<Qcow2Snapshots.Snapshot> snapshots, long pendingCorruptions) {
    }

    /**
     * QEMU's qcow2_check_read_snapshot_table: counts go to {@code res};
     * returns null when the check must stop ({@code res.failure} set).
     */
    static Read read(BlockNode file, Qcow2Header h, boolean fixErrors, Consumer<String> report,
                     Qcow2CheckResult res) throws BlockException {
        long count = Integer.toUnsignedLong(h.snapshotCount());
        long offset = h.snapshotsOffset();
        long reduced = 0;
        if (count > Qcow2Limits.MAX_SNAPSHOTS && fixErrors) {
            report.accept("Discarding " + (count - Qcow2Limits.MAX_SNAPSHOTS) + " overhanging snapshots");
            reduced += count - Qcow2Limits.MAX_SNAPSHOTS;
            count = Qcow2Limits.MAX_SNAPSHOTS;
        }
        Errno invalid = null;
        if (count > Qcow2Limits.MAX_SNAPSHOTS) {
            report.accept(Qcow2Check.ERROR_REPORT + "ERROR snapshot table too large");
            invalid = Errno.EFBIG;
        } else if ((offset & (h.clusterSize() - 1)) != 0 || offset < 0
                || offset > Long.MAX_VALUE - count * Qcow2Limits.SNAPSHOT_HEADER_SIZE) {
            report.accept(Qcow2Check.ERROR_REPORT + "ERROR snapshot table offset invalid");
            invalid = Errno.EINVAL;
        }
        if (invalid != null) {
            res.checkErrors++;
            if (count > Qcow2Limits.MAX_SNAPSHOTS) {
                report.accept("You can force-remove all " + (count - Qcow2Limits.MAX_SNAPSHOTS)
                        + " overhanging snapshots with qemu-img check -r all");
            }
            res.failure = invalid;
            return null;
        }
        Qcow2Snapshots.Table table;
        try {
            table = Qcow2Snapshots.read(file, file.length(), offset, (int) count, fixErrors, true, report);
        } catch (BlockException e) {
            res.checkErrors++;
            report.accept(Qcow2Check.ERROR_REPORT + "ERROR failed to read the snapshot table: " + e.getMessage());
            res.failure = e.errno();
            return null;
        }
        reduced += table.dropped();
        long pending = table.extraTruncated();
        if (reduced > 0) {
            // The count goes down on disk now: the refcount check reads the header's, and frees what the cut
            // snapshots leaked.
            try {
                file.write(HEADER_NB_SNAPSHOTS, ByteBuffer.allocate(4).putInt(0, table.snapshots().size()), 0);
                file.flush();
            } catch (BlockException e) {
                res.checkErrors++;
                report.accept("ERROR failed to update the snapshot count in the image header: "
                        + e.errno().text());
                res.failure = e.errno();
                return null;
            }
            res.corruptionsFixed += reduced;
        }
        if (h.version() >= 3) {
            // Version 3 entries must have at least the VM state size and the disk size in their extra data.
            for (int i = 0; i < table.snapshots().size(); i++) {
                if (table.snapshots().get(i).extraDataSize() < 16) {
                    pending++;
                    report.accept((fixErrors ? "Repairing" : "ERROR") + " snapshot table entry " + i
                            + " is incomplete");
                }
            }
        }
        return new Read(table.snapshots(), pending);
    }

    /**
     * QEMU's qcow2_check_fix_snapshot_table: with {@code -r all}, a table
     * with corruptions left is written anew (extra data cut, missing disk
     * sizes filled in) through an image opened on the repaired file.
     * Returns false when that failed ({@code res.failure} set).
     */
    static boolean fix(BlockNode file, Read read, Consumer<String> report, Qcow2CheckResult res)
            throws BlockException {
        long fileLength = file.length();
        Qcow2Header h = Qcow2Header.decode(Qcow2CheckImage.read(file, 0, 112));
        Qcow2Extensions ext = Qcow2Extensions.decode(h, Qcow2CheckImage.read(file, 0, (int) h.clusterSize()));
        long[] l1 = new long[h.l1Size()];
        Qcow2CheckImage.read(file, h.l1TableOffset(), h.l1Size() * 8).asLongBuffer().get(l1);
        try {
            NodeSettings rw = new NodeSettings(NodeSettings.autoName(), false, false, false,
                    io.jblock.block.DiscardMode.IGNORE);
            Qcow2Node node = new Qcow2Node(rw, h, ext, file, fileLength, l1, read.snapshots(), null, null);
            node.internalSnapshots().rewriteTable();
            node.flushToOs();
            file.flush();
        } catch (BlockException e) {
            res.checkErrors++;
            report.accept("ERROR failed to update snapshot table: " + e.errno().text());
            res.failure = e.errno();
            return false;
        }
        return true;
    }
}
