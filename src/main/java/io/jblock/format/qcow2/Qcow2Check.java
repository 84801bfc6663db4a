package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.Consumer;

/**
 * The consistency check of a qcow2 image, and its repair: what QEMU 7.2's
 * qcow2 check finds, with its messages, counts and repairs. This class runs
 * the steps in QEMU's order and compares the counts; the rest is in rooms of
 * its own: {@link Qcow2CheckReferences} (what the metadata references),
 * {@link Qcow2CheckStoredRefcounts} (what the image stores),
 * {@link Qcow2RefcountRebuild}, {@link Qcow2CheckCopiedFlags} and
 * {@link Qcow2CheckOverlap} (the guard on every repair write).
 *
 * <h2>How</h2>
 * <ol>
 *   <li>Compute the reference count every host cluster should have
 *       ({@link Qcow2CheckCounts}): the header; the active L1 table, its L2
 *       tables and the clusters they map (with the allocation and
 *       fragmentation figures); every snapshot's L1 and L2 tables; the
 *       snapshot table; the refcount table; the bitmap directory, tables and
 *       clusters; then the refcount blocks themselves, checked on the way.
 *       Entries are checked as they are counted (reserved bits, alignment,
 *       compressed entries with COPIED, subcluster bitmaps).</li>
 *   <li>Compare with the stored counts ({@link Qcow2CheckStoredRefcounts}):
 *       stored &gt; computed is a leak, stored &lt; computed a corruption,
 *       and a stored 0 for a cluster in use means the refcount structure must
 *       be rebuilt ({@link Qcow2RefcountRebuild}). Repairs write the
 *       computed count.</li>
 *   <li>Check the COPIED flag of every active L1 and L2 entry against the
 *       (now repaired) stored count: set exactly when the count is 1.</li>
 * </ol>
 * With repairs, a clean result clears the dirty and corrupt bits.
 *
 * <h2>Doors</h2>
 * {@link #run} parses the image through its file node (for {@code img check});
 * {@link #check} takes what the driver already parsed at open (for the
 * repair of a dirty image with lazy refcounts). A repair that rebuilt the
 * refcount structure changed the header's refcount table fields: callers
 * that keep a header must read it again. Messages go to {@code report} one
 * line at a time (QEMU writes them to stderr).
 */
public final class Qcow2Check {
    /** What to repair: qemu-img check's {@code -r leaks} and {@code -r all}. */
    public enum Repair {
        NONE(false, false), LEAKS(true, false), ALL(true, true);

        final boolean leaks;
        final boolean errors;

        Repair(boolean leaks, boolean errors) {
            this.leaks = leaks;
            this.errors = errors;
        }

        boolean any() {
            return leaks || errors;
        }
    }

    /** Where the incompatible feature bits are in a version 3 header. */
    private static final int HEADER_INCOMPATIBLE = Qcow2CheckImage.HEADER_INCOMPATIBLE;

    private final Qcow2CheckImage img;
    private final BlockNode file;
    private final Qcow2Header h;
    private final Consumer<String> report;
    private final int clusterBits;
    private final long clusterSize;
    private final Qcow2CheckStoredRefcounts stored;
    private Qcow2CheckCounts counts;

    private Qcow2Check(Qcow2CheckImage img) {
        this.img = img;
        this.file = img.file;
        this.h = img.h;
        this.report = img.report;
        this.clusterBits = img.clusterBits;
        this.clusterSize = img.clusterSize;
        this.stored = img.stored;
    }

    /**
     * A line that starts with this goes through QEMU's error_report: the
     * tool prints its name and ": " in its place. Other lines are printed
     * as they are.
     */
    public static final String ERROR_REPORT = "\u0001";

    /**
     * Checks (and with {@code repair}, repairs) the qcow2 image in {@code file},
     * reading its header and L1 table first with the checks the driver makes
     * at a check-mode open (the snapshot table is the check's to read).
     * {@code file} must be writable to repair.
     */
    public static Qcow2CheckResult run(BlockNode file, Repair repair, Consumer<String> report)
            throws BlockException {
        long fileLength = file.length();
        Qcow2Header h = Qcow2Header.decode(read(file, 0, 112));
        Qcow2Extensions ext = Qcow2Extensions.decode(h, read(file, 0, (int) h.clusterSize()));
        Qcow2Limits.check(h, fileLength, true);
        ByteBuffer l1Bytes = read(file, h.l1TableOffset(), h.l1Size() * 8);
        long[] l1 = new long[h.l1Size()];
        l1Bytes.asLongBuffer().get(l1);
        return check(file, h, ext, l1, repair, report);
    }

    /**
     * Checks the image the driver opened: its header, extensions, active L1
     * table (updated in place when COPIED flags are repaired); the snapshot
     * table is read here, as QEMU's qcow2_co_check_locked reads it: first
     * the table ({@link Qcow2CheckSnapshotTable}), then the refcounts, then
     * the table's own repair.
     */
    static Qcow2CheckResult check(BlockNode file, Qcow2Header h, Qcow2Extensions ext, long[] l1,
                                  Repair repair, Consumer<String> report) throws BlockException {
        if (repair.any() && file.isReadOnly()) {
            throw new BlockException(Errno.EROFS, "the image must be opened read-write to repair it");
        }
        Qcow2CheckResult res = new Qcow2CheckResult();
        Qcow2CheckResult snapshotRes = new Qcow2CheckResult();
        Qcow2CheckSnapshotTable.Read table = Qcow2CheckSnapshotTable.read(file, h, repair.errors, report,
                snapshotRes);
        if (table == null) {
            res.add(snapshotRes);
            res.failure = snapshotRes.failure;
            return res;
        }
        if (snapshotRes.corruptionsFixed != 0) {
            h = Qcow2Header.decode(read(file, 0, 112)); // the snapshot count went down
        }
        try {
            new Qcow2Check(new Qcow2CheckImage(file, h, ext, l1, table.snapshots(), report))
                    .checkRefcounts(res, repair);
        } catch (Qcow2CheckFailed f) {
            res.failure = f.errno;
            snapshotRes.corruptions += table.pendingCorruptions();
            res.add(snapshotRes);
            return res;
        }
        snapshotRes.corruptions += table.pendingCorruptions();
        if (snapshotRes.corruptions != 0 && repair.errors) {
            if (!Qcow2CheckSnapshotTable.fix(file, table, report, snapshotRes)) {
                res.add(snapshotRes);
                res.failure = snapshotRes.failure;
                return res;
            }
            snapshotRes.corruptionsFixed += snapshotRes.corruptions;
            snapshotRes.corruptions = 0;
        }
        res.add(snapshotRes);
        if (repair.any() && res.checkErrors == 0 && res.corruptions == 0) {
            markCleanAndConsistent(file, Qcow2Header.decode(read(file, 0, 112)));
        }
        return res;
    }

    /**
     * What QEMU does when it opens a dirty image (lazy refcounts, not closed
     * cleanly) for writing: check it, repairing everything; the image is
     * refused when the check fails or meets internal errors. The caller must
     * read the header again afterwards (the refcount table may have moved,
     * the dirty bit is cleared).
     */
    static Qcow2CheckResult repairDirty(BlockNode file, Qcow2Header h, Qcow2Extensions ext, long[] l1,
                                        Consumer<String> report) throws BlockException {
        Qcow2CheckResult r = check(file, h, ext, l1, Repair.ALL, report);
        if (r.failure != null || r.checkErrors != 0) {
            Errno e = r.failure != null ? r.failure : Errno.EIO;
            throw new BlockException(e, "Could not repair dirty image: " + e.text());
        }
        return r;
    }

    /** QEMU's qcow2_mark_clean and qcow2_mark_consistent: the dirty and corrupt bits go. */
    private static void markCleanAndConsistent(BlockNode file, Qcow2Header h) throws BlockException {
        long bits = Qcow2Header.INCOMPAT_DIRTY | Qcow2Header.INCOMPAT_CORRUPT;
        if (h.version() < 3 || (h.incompatibleFeatures() & bits) == 0) {
            return;
        }
        file.flush();
        ByteBuffer b = ByteBuffer.allocate(8).putLong(0, h.incompatibleFeatures() & ~bits);
        file.write(HEADER_INCOMPATIBLE, b, WriteFlags.NONE);
        file.flush();
    }

    // ------------------------------------------------------------------ the whole check

    private void checkRefcounts(Qcow2CheckResult res, Repair fix) throws Qcow2CheckFailed, BlockException {
        long size = file.length();
        counts = new Qcow2CheckCounts(clusterBits, h.refcountOrder(), img.clusters(size));
        if (counts.size() > Integer.MAX_VALUE) {
            res.checkErrors++;
            throw new Qcow2CheckFailed(Errno.EFBIG);
        }
        long virtualSize = h.size() / 512 * 512;
        res.totalClusters = img.clusters(virtualSize);
        boolean[] rebuild = {false};
        Qcow2CheckReferences.count(img, counts, res, fix, rebuild);

        Qcow2CheckResult preCompare = res.copy();
        long highest = compare(res, Repair.NONE, rebuild);

        if (rebuild[0] && fix.errors) {
            Qcow2CheckResult old = res.copy();
            report.accept("Rebuilding refcount structure");
            Qcow2RefcountRebuild.Rebuilt r;
            try {
                r = Qcow2RefcountRebuild.rebuild(file, counts, clusterBits);
            } catch (BlockException e) {
                res.checkErrors++;
                report.accept(e.getMessage());
                throw new Qcow2CheckFailed(e.errno());
            }
            stored.replaceTable(r.table());
            img.reftableOffset = r.tableOffset();
            img.reftableEntries = r.table().length;
            res.corruptions = 0;
            res.leaks = 0;
            rebuild[0] = false;
            counts = new Qcow2CheckCounts(clusterBits, h.refcountOrder(), counts.size());
            Qcow2CheckReferences.count(img, counts, res, Repair.NONE, rebuild);
            long freshLeaks = 0;
            if (fix.leaks) {
                // The old refcount structure is now leaked: free it. Leaks that stay were made by the rebuild.
                Qcow2CheckResult saved = res.copy();
                Qcow2CheckResult scratch = new Qcow2CheckResult();
                res.setTo(scratch);
                highest = compare(res, Repair.LEAKS, rebuild);
                if (rebuild[0]) {
                    report.accept("ERROR rebuilt refcount structure is still broken");
                }
                freshLeaks = res.leaks;
                res.setTo(saved);
            }
            if (res.corruptions < old.corruptions) {
                res.corruptionsFixed += old.corruptions - res.corruptions;
            }
            if (res.leaks < old.leaks) {
                res.leaksFixed += old.leaks - res.leaks;
            }
            res.leaks += freshLeaks;
        } else if (fix.any()) {
            if (rebuild[0]) {
                report.accept("ERROR need to rebuild refcount structures");
                res.checkErrors++;
                throw new Qcow2CheckFailed(Errno.EIO);
            }
            if (res.leaks != 0 || res.corruptions != 0) {
                res.setTo(preCompare);
                highest = compare(res, fix, rebuild);
            }
        }
        Qcow2CheckCopiedFlags.check(img, res, fix);
        res.imageEndOffset = (highest + 1) * clusterSize;
    }

    // ------------------------------------------------------------------ comparison

    /** Computed against stored counts, repairing what {@code fix} allows; returns the highest cluster in use. */
    private long compare(Qcow2CheckResult res, Repair fix, boolean[] rebuild) throws BlockException {
        long highest = 0;
        int blockBits = stored.entriesPerBlockBits();
        for (long i = 0; i < counts.size(); i++) {
            long block = i >>> blockBits;
            if (stored.blockAbsent(block) && counts.chunkEmpty(block)) {
                i = ((block + 1) << blockBits) - 1; // nothing stored, nothing computed
                continue;
            }
            long refcount1;
            try {
                refcount1 = stored.get(i);
            } catch (Qcow2CheckStoredRefcounts.Unreadable e) {
                report.accept("Can't get refcount for cluster " + i + ": " + e.errno.text());
                res.checkErrors++;
                continue;
            }
            long refcount2 = counts.get(i);
            if (refcount1 != 0 || refcount2 != 0) {
                highest = i;
            }
            if (refcount1 == refcount2) {
                continue;
            }
            boolean less = Long.compareUnsigned(refcount1, refcount2) < 0;
            boolean fixLeak = false;
            boolean fixError = false;
            if (refcount1 == 0) {
                rebuild[0] = true;
            } else if (!less && fix.leaks) {
                fixLeak = true;
            } else if (less && fix.errors) {
                fixError = true;
            }
            report.accept((fixLeak || fixError ? "Repairing" : less ? "ERROR" : "Leaked") + " cluster " + i
                    + " refcount=" + Long.toUnsignedString(refcount1) + " reference="
                    + Long.toUnsignedString(refcount2));
            if (fixLeak || fixError) {
                try {
                    img.guardWrite(java.util.EnumSet.of(Qcow2CheckOverlap.Kind.REFCOUNT_BLOCK), stored.blockOffset(i),
                            clusterSize);
                    stored.set(i, refcount2);
                    if (fixLeak && refcount2 == 0) {
                        discardFreed(i);
                    }
                    if (fixLeak) {
                        res.leaksFixed++;
                    } else {
                        res.corruptionsFixed++;
                    }
                    continue;
                } catch (Qcow2CheckStoredRefcounts.Unreadable | BlockException | Qcow2CheckFailed e) {
                    // counted below as not repaired
                }
            }
            if (less) {
                res.corruptions++;
            } else {
                res.leaks++;
            }
        }
        return highest;
    }


    /**
     * A leaked cluster the repair freed is discarded in the file, as QEMU's
     * repair frees it (update_refcount with QCOW2_DISCARD_ALWAYS): nothing
     * references it. Discarding is optional; a failure is ignored.
     */
    private void discardFreed(long cluster) {
        try {
            file.discard(cluster << clusterBits, clusterSize);
        } catch (BlockException ignored) {
            // the cluster is free either way
        }
    }

    /** C's {@code %#x}: "0x" and lower-case hex, but plain "0" for zero. */
    static String hashHex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }

    /** {@code n} bytes at {@code offset}; past the end of the file they read as zeroes. */
    static ByteBuffer read(BlockNode file, long offset, int n) throws BlockException {
        return Qcow2CheckImage.read(file, offset, n);
    }
}
