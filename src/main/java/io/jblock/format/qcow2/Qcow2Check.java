package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.Consumer;

/**
 * The consistency check of a qcow2 image, and its repair: what QEMU 7.2's
 * qcow2 check finds, with its messages, counts and repairs.
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

    static final long L1_RESERVED_MASK = 0x7f000000000001ffL;
    static final long L1_OFFSET_MASK = 0x00fffffffffffe00L;
    static final long L2_STD_RESERVED_MASK = 0x3f000000000001feL;
    static final long SUBCLUSTERS_ALL_ALLOC = 0xffffffffL;
    static final long SUBCLUSTERS_ALL_ZERO = 0xffffffff00000000L;
    /** Where the incompatible feature bits are in a version 3 header. */
    private static final int HEADER_INCOMPATIBLE = 72;

    /** The check cannot go on: QEMU's negative return, with its errno. */
    private static final class Failed extends Exception {
        final Errno errno;

        Failed(Errno errno) {
            super(errno.text(), null, false, false);
            this.errno = errno;
        }
    }

    private final BlockNode file;
    private final Qcow2Header h;
    private final Qcow2Extensions ext;
    private final long[] l1;
    private final List<Qcow2Snapshots.Snapshot> snapshots;
    private final Consumer<String> report;
    private final int clusterBits;
    private final long clusterSize;
    private final Qcow2Geometry g;
    private final boolean dataFile;
    private final Qcow2CheckStoredRefcounts stored;
    private long reftableOffset;
    private long reftableEntries;
    private Qcow2CheckCounts counts;
    private final long snapshotsBytes;
    /** The file's length (in whole sectors, as QEMU sees it), kept as the check changes it. */
    private long fileLength;

    private Qcow2Check(BlockNode file, Qcow2Header h, Qcow2Extensions ext, long[] l1,
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

    /**
     * Checks (and with {@code repair}, repairs) the qcow2 image in {@code file},
     * reading its header, L1 table and snapshot table first with the checks
     * the driver makes at open. {@code file} must be writable to repair.
     */
    public static Qcow2CheckResult run(BlockNode file, Repair repair, Consumer<String> report)
            throws BlockException {
        long fileLength = file.length();
        Qcow2Header h = Qcow2Header.decode(read(file, 0, 112));
        Qcow2Extensions ext = Qcow2Extensions.decode(h, read(file, 0, (int) h.clusterSize()));
        Qcow2Limits.check(h, fileLength);
        ByteBuffer l1Bytes = read(file, h.l1TableOffset(), h.l1Size() * 8);
        long[] l1 = new long[h.l1Size()];
        l1Bytes.asLongBuffer().get(l1);
        List<Qcow2Snapshots.Snapshot> snapshots = Qcow2Snapshots.read(file, fileLength, h);
        return check(file, h, ext, l1, snapshots, repair, report);
    }

    /**
     * Checks the image the driver opened: its header, extensions, active L1
     * table (updated in place when COPIED flags are repaired) and snapshots.
     */
    static Qcow2CheckResult check(BlockNode file, Qcow2Header h, Qcow2Extensions ext, long[] l1,
                                  List<Qcow2Snapshots.Snapshot> snapshots, Repair repair,
                                  Consumer<String> report) throws BlockException {
        if (repair.any() && file.isReadOnly()) {
            throw new BlockException(Errno.EROFS, "the image must be opened read-write to repair it");
        }
        Qcow2CheckResult res = new Qcow2CheckResult();
        try {
            new Qcow2Check(file, h, ext, l1, snapshots, report).checkRefcounts(res, repair);
        } catch (Failed f) {
            res.failure = f.errno;
            return res;
        }
        if (repair.any() && res.checkErrors == 0 && res.corruptions == 0) {
            markCleanAndConsistent(file, h);
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
                                        List<Qcow2Snapshots.Snapshot> snapshots, Consumer<String> report)
            throws BlockException {
        Qcow2CheckResult r = check(file, h, ext, l1, snapshots, Repair.ALL, report);
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

    private void checkRefcounts(Qcow2CheckResult res, Repair fix) throws Failed, BlockException {
        long size = file.length();
        fileLength = size;
        counts = new Qcow2CheckCounts(clusterBits, h.refcountOrder(), clusters(size));
        if (counts.size() > Integer.MAX_VALUE) {
            res.checkErrors++;
            throw new Failed(Errno.EFBIG);
        }
        long virtualSize = h.size() / 512 * 512;
        res.totalClusters = clusters(virtualSize);
        boolean[] rebuild = {false};
        calculate(res, fix, rebuild);

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
                throw new Failed(e.errno());
            }
            stored.replaceTable(r.table());
            fileLength = file.length(); // the new blocks and table may lie past the old end
            reftableOffset = r.tableOffset();
            reftableEntries = r.table().length;
            res.corruptions = 0;
            res.leaks = 0;
            rebuild[0] = false;
            counts = new Qcow2CheckCounts(clusterBits, h.refcountOrder(), counts.size());
            calculate(res, Repair.NONE, rebuild);
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
                throw new Failed(Errno.EIO);
            }
            if (res.leaks != 0 || res.corruptions != 0) {
                res.setTo(preCompare);
                highest = compare(res, fix, rebuild);
            }
        }
        checkCopiedFlags(res, fix);
        res.imageEndOffset = (highest + 1) * clusterSize;
    }

    private long clusters(long bytes) {
        return (bytes + clusterSize - 1) >>> clusterBits;
    }

    // ------------------------------------------------------------------ computed counts

    private void calculate(Qcow2CheckResult res, Repair fix, boolean[] rebuild) throws Failed, BlockException {
        inc(res, 0, clusterSize);
        checkL1(res, h.l1TableOffset(), h.l1Size(), true, fix, true);

        if (dataFile && !snapshots.isEmpty()) {
            report.accept("ERROR " + snapshots.size() + " snapshots in image with data file");
            res.corruptions++;
        }
        for (Qcow2Snapshots.Snapshot sn : snapshots) {
            if ((sn.l1TableOffset() & (clusterSize - 1)) != 0) {
                report.accept("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_offset="
                        + hashHex(sn.l1TableOffset())
                        + ": L1 table is not cluster aligned; snapshot table entry corrupted");
                res.corruptions++;
                continue;
            }
            if (Integer.toUnsignedLong(sn.l1Size()) > Qcow2Limits.MAX_L1_BYTES / 8) {
                report.accept("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_size="
                        + hashHex(Integer.toUnsignedLong(sn.l1Size()))
                        + ": L1 table is too large; snapshot table entry corrupted");
                res.corruptions++;
                continue;
            }
            checkL1(res, sn.l1TableOffset(), sn.l1Size(), false, fix, false);
        }
        inc(res, h.snapshotsOffset(), snapshotTableBytes());
        inc(res, reftableOffset, reftableEntries * 8);
        checkBitmaps(res);
        checkRefcountBlocks(res, fix, rebuild);
    }

    /** QEMU's qcow2_inc_refcounts_imrt: one more reference to every cluster the bytes touch. */
    private void inc(Qcow2CheckResult res, long offset, long size) throws Failed {
        if (size <= 0) {
            return;
        }
        // The last cluster may be partly past the end of the file, never a whole cluster or more.
        if (offset + size - fileLength >= clusterSize) {
            report.accept("ERROR: counting reference for region exceeding the end of the file by one cluster or"
                    + " more: offset 0x" + Long.toHexString(offset) + " size 0x" + Long.toHexString(size));
            res.corruptions++;
            return;
        }
        if (offset < 0 || offset > Long.MAX_VALUE - size) {
            res.checkErrors++;
            throw new Failed(Errno.ENOMEM);
        }
        long start = offset >>> clusterBits;
        long last = (offset + size - 1) >>> clusterBits;
        for (long k = start; k <= last; k++) {
            if (k >= counts.size() && !counts.growTo(k + 1)) {
                res.checkErrors++;
                throw new Failed(Errno.ENOMEM);
            }
            long refcount = counts.get(k);
            if (refcount == counts.max()) {
                report.accept("ERROR: overflow cluster offset=0x" + Long.toHexString(k << clusterBits));
                report.accept("Use qemu-img amend to increase the refcount entry width or qemu-img convert to"
                        + " create a clean copy if the image cannot be opened for writing");
                res.corruptions++;
                continue;
            }
            counts.set(k, refcount + 1);
        }
    }

    private void checkL1(Qcow2CheckResult res, long offset, int size, boolean fragInfo, Repair fix,
                         boolean active) throws Failed, BlockException {
        if (size == 0) {
            return;
        }
        long bytes = Integer.toUnsignedLong(size) * 8;
        inc(res, offset, bytes);
        ByteBuffer b;
        try {
            b = read(file, offset, (int) bytes);
        } catch (BlockException e) {
            report.accept("ERROR: I/O error in check_refcounts_l1");
            res.checkErrors++;
            throw new Failed(e.errno());
        }
        for (int i = 0; i < size; i++) {
            long entry = b.getLong(i * 8);
            if (entry == 0) {
                continue;
            }
            if ((entry & L1_RESERVED_MASK) != 0) {
                report.accept("ERROR found L1 entry with reserved bits set: " + Long.toHexString(entry));
                res.corruptions++;
            }
            long l2Offset = entry & L1_OFFSET_MASK;
            inc(res, l2Offset, clusterSize);
            if ((l2Offset & (clusterSize - 1)) != 0) {
                report.accept("ERROR l2_offset=" + Long.toHexString(l2Offset)
                        + ": Table is not cluster aligned; L1 entry corrupted");
                res.corruptions++;
            }
            checkL2(res, l2Offset, fragInfo, fix, active);
        }
    }

    /** QEMU's qcow2_get_cluster_type, at cluster level. */
    private enum ClusterType { COMPRESSED, ZERO_PLAIN, ZERO_ALLOC, NORMAL, UNALLOCATED }

    private ClusterType type(long entry) {
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

    private void checkL2(Qcow2CheckResult res, long l2Offset, boolean fragInfo, Repair fix, boolean active)
            throws Failed, BlockException {
        int entrySize = g.l2EntrySize();
        int n = (int) g.l2Entries();
        ByteBuffer t;
        try {
            t = read(file, l2Offset, (int) clusterSize);
        } catch (BlockException e) {
            report.accept("ERROR: I/O error in check_refcounts_l2");
            res.checkErrors++;
            throw new Failed(e.errno());
        }
        long nextContiguous = 0;
        for (int i = 0; i < n; i++) {
            long entry = t.getLong(i * entrySize);
            long bitmap = g.extendedL2() ? t.getLong(i * entrySize + 8) : 0;
            ClusterType type = type(entry);
            if (type != ClusterType.COMPRESSED && (entry & L2_STD_RESERVED_MASK) != 0) {
                report.accept("ERROR found l2 entry with reserved bits set: " + Long.toHexString(entry));
                res.corruptions++;
            }
            switch (type) {
                case COMPRESSED -> {
                    int shift = 62 - (clusterBits - 8);
                    if ((entry & Qcow2L2Entry.COPIED) != 0) {
                        report.accept("ERROR: coffset=0x" + Long.toHexString(entry & ((1L << shift) - 1))
                                + ": copied flag must never be set for compressed clusters");
                        entry &= ~Qcow2L2Entry.COPIED;
                        res.corruptions++;
                    }
                    if (dataFile) {
                        report.accept("ERROR compressed cluster " + i + " with data file, entry=0x"
                                + Long.toHexString(entry));
                        res.corruptions++;
                        break;
                    }
                    if (bitmap != 0) {
                        report.accept("ERROR compressed cluster " + i
                                + " with non-zero subcluster allocation bitmap, entry=0x" + Long.toHexString(entry));
                        res.corruptions++;
                        break;
                    }
                    long coffset = Qcow2L2Entry.compressedOffset(entry, clusterBits);
                    inc(res, coffset, Qcow2L2Entry.compressedSize(entry, clusterBits));
                    if (fragInfo) {
                        res.allocatedClusters++;
                        res.compressedClusters++;
                        // Compressed clusters share sectors, so even adjacent ones are read apart.
                        res.fragmentedClusters++;
                    }
                }
                case ZERO_ALLOC, NORMAL -> {
                    long offset = entry & Qcow2L2Entry.OFFSET_MASK;
                    if (((bitmap >>> 32) & bitmap) != 0) {
                        res.corruptions++;
                        report.accept("ERROR offset=" + Long.toHexString(offset)
                                + ": Allocated cluster has corrupted subcluster allocation bitmap");
                    }
                    if ((offset & (clusterSize - 1)) != 0) {
                        res.corruptions++;
                        boolean containsData = g.extendedL2() ? (bitmap & SUBCLUSTERS_ALL_ALLOC) != 0
                                : (entry & Qcow2L2Entry.ZERO) == 0;
                        if (!containsData) {
                            report.accept((fix.errors ? "Repairing" : "ERROR") + " offset="
                                    + Long.toHexString(offset)
                                    + ": Preallocated cluster is not properly aligned; L2 entry corrupted.");
                            if (fix.errors && fixEntryByZero(res, l2Offset, i, bitmap, active)) {
                                continue; // the cluster is no longer used
                            }
                        } else {
                            report.accept("ERROR offset=" + Long.toHexString(offset)
                                    + ": Data cluster is not properly aligned; L2 entry corrupted.");
                        }
                    }
                    if (fragInfo) {
                        res.allocatedClusters++;
                        if (nextContiguous != 0 && offset != nextContiguous) {
                            res.fragmentedClusters++;
                        }
                        nextContiguous = offset + clusterSize;
                    }
                    if (!dataFile) {
                        inc(res, offset, clusterSize);
                    }
                }
                case ZERO_PLAIN -> {
                }
                case UNALLOCATED -> {
                    if ((bitmap & SUBCLUSTERS_ALL_ALLOC) != 0) {
                        res.corruptions++;
                        report.accept("ERROR: Unallocated cluster has non-zero subcluster allocation map");
                    }
                }
            }
        }
    }

    /**
     * Makes a misaligned preallocated entry a plain zero cluster (with
     * extended L2: allocated subclusters become zero), written at once.
     */
    private boolean fixEntryByZero(Qcow2CheckResult res, long l2Offset, int index, long bitmap, boolean active)
            throws Failed, BlockException {
        int entrySize = g.l2EntrySize();
        long at = l2Offset + (long) index * entrySize;
        try {
            guardWrite(java.util.EnumSet.of(active ? Qcow2CheckOverlap.Kind.ACTIVE_L2
                    : Qcow2CheckOverlap.Kind.INACTIVE_L2), at, entrySize);
        } catch (Failed f) {
            report.accept("ERROR: Overlap check failed");
            res.checkErrors++;
            throw f;
        }
        ByteBuffer e = ByteBuffer.allocate(entrySize);
        if (g.extendedL2()) {
            long zeroes = (bitmap | bitmap << 32) & SUBCLUSTERS_ALL_ZERO;
            e.putLong(0, 0).putLong(8, zeroes);
        } else {
            e.putLong(0, Qcow2L2Entry.ZERO);
        }
        try {
            file.write(at, e, WriteFlags.NONE);
            file.flush();
        } catch (BlockException ex) {
            report.accept("ERROR: Failed to overwrite L2 table entry: " + ex.errno().text());
            res.checkErrors++;
            return false;
        }
        res.corruptions--;
        res.corruptionsFixed++;
        return true;
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
     * The bitmaps extension: the directory, each bitmap's table and the
     * clusters its entries name. A directory that cannot be parsed is a
     * corruption that stops the check (EINVAL), as in QEMU.
     */
    private void checkBitmaps(Qcow2CheckResult res) throws Failed, BlockException {
        Qcow2Extensions.Bitmaps bm = ext.bitmaps();
        if (bm == null) {
            return;
        }
        inc(res, bm.directoryOffset(), bm.directorySize());
        ByteBuffer dir = read(file, bm.directoryOffset(), (int) bm.directorySize());
        long at = 0;
        for (long n = 0; n < bm.count(); n++) {
            if (at + 24 > bm.directorySize()) {
                res.corruptions++;
                throw new Failed(Errno.EINVAL);
            }
            long tableOffset = dir.getLong((int) at);
            long tableSize = Integer.toUnsignedLong(dir.getInt((int) at + 8));
            int nameSize = Short.toUnsignedInt(dir.getShort((int) at + 18));
            long extra = Integer.toUnsignedLong(dir.getInt((int) at + 20));
            long entryBytes = (24 + extra + nameSize + 7) & ~7L;
            if (at + entryBytes > bm.directorySize() || (tableOffset & (clusterSize - 1)) != 0
                    || tableSize > (Qcow2Limits.MAX_L1_BYTES / 8)) {
                res.corruptions++;
                throw new Failed(Errno.EINVAL);
            }
            inc(res, tableOffset, tableSize * 8);
            ByteBuffer table;
            try {
                table = read(file, tableOffset, (int) tableSize * 8);
            } catch (BlockException e) {
                res.corruptions++;
                throw new Failed(e.errno());
            }
            for (int i = 0; i < tableSize; i++) {
                long entry = table.getLong(i * 8);
                long offset = entry & L1_OFFSET_MASK;
                boolean bad = (entry & 0xff000000000001feL) != 0
                        || (offset != 0 && ((entry & 1) != 0 || (offset & (clusterSize - 1)) != 0));
                if (bad) {
                    res.corruptions++;
                    continue;
                }
                if (offset != 0) {
                    inc(res, offset, clusterSize);
                }
            }
            at += entryBytes;
        }
    }

    /** Each refcount block: a sane table entry, inside the file, referenced exactly once. */
    private void checkRefcountBlocks(Qcow2CheckResult res, Repair fix, boolean[] rebuild)
            throws Failed, BlockException {
        long[] table = stored.table();
        for (int i = 0; i < table.length; i++) {
            long offset = table[i] & Qcow2CheckStoredRefcounts.OFFSET_MASK;
            long cluster = offset >>> clusterBits;
            if ((table[i] & Qcow2CheckStoredRefcounts.RESERVED_MASK) != 0) {
                report.accept("ERROR refcount table entry " + i + " has reserved bits set");
                res.corruptions++;
                rebuild[0] = true;
                continue;
            }
            if ((offset & (clusterSize - 1)) != 0) {
                report.accept("ERROR refcount block " + i + " is not cluster aligned; refcount table entry corrupted");
                res.corruptions++;
                rebuild[0] = true;
                continue;
            }
            if (cluster >= counts.size()) {
                res.corruptions++;
                report.accept((fix.errors ? "Repairing" : "ERROR") + " refcount block " + i + " is outside image");
                if (fix.errors) {
                    Errno why = growFileFor(offset);
                    if (why == null) {
                        res.corruptions--;
                        res.corruptionsFixed++;
                        inc(res, offset, clusterSize);
                        continue;
                    }
                    rebuild[0] = true;
                    report.accept("ERROR could not resize image: " + why.text());
                }
                continue;
            }
            if (offset != 0) {
                inc(res, offset, clusterSize);
                long c = counts.get(cluster);
                if (c != 1) {
                    report.accept("ERROR refcount block " + i + " refcount=" + Long.toUnsignedString(c));
                    res.corruptions++;
                    rebuild[0] = true;
                }
            }
        }
    }

    /** Grows the file to hold a refcount block that lies past its end; null when it worked. */
    private Errno growFileFor(long offset) throws Failed {
        if (offset > Long.MAX_VALUE - clusterSize) {
            return Errno.EINVAL;
        }
        long size;
        try {
            file.truncate(offset + clusterSize, false, Prealloc.OFF);
            size = file.length();
            fileLength = size;
        } catch (BlockException e) {
            return e.errno();
        }
        long n = clusters(size);
        if (!counts.growTo(n)) {
            return Errno.ENOMEM;
        }
        return (offset >>> clusterBits) < counts.size() ? null : Errno.EINVAL;
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
                    guardWrite(java.util.EnumSet.of(Qcow2CheckOverlap.Kind.REFCOUNT_BLOCK), stored.blockOffset(i),
                            clusterSize);
                    stored.set(i, refcount2);
                    if (fixLeak) {
                        res.leaksFixed++;
                    } else {
                        res.corruptionsFixed++;
                    }
                    continue;
                } catch (Qcow2CheckStoredRefcounts.Unreadable | BlockException | Failed e) {
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

    // ------------------------------------------------------------------ COPIED flags

    private void checkCopiedFlags(Qcow2CheckResult res, Repair fix) throws Failed, BlockException {
        boolean repair = fix.errors
                // After -r leaks the counts are right only if nothing else was wrong.
                || (fix.leaks && res.checkErrors == 0 && res.corruptions == 0 && res.leaks == 0);
        for (int i = 0; i < l1.length; i++) {
            long l1Entry = l1[i];
            long l2Offset = l1Entry & L1_OFFSET_MASK;
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
                        guardWrite(java.util.EnumSet.of(Qcow2CheckOverlap.Kind.ACTIVE_L1), h.l1TableOffset() + i * 8L,
                                8);
                        file.write(h.l1TableOffset() + i * 8L, ByteBuffer.allocate(8).putLong(0, l1[i]),
                                WriteFlags.NONE);
                        file.flush();
                    } catch (Failed f) {
                        res.checkErrors++;
                        throw f;
                    } catch (BlockException e) {
                        res.checkErrors++;
                        throw new Failed(e.errno());
                    }
                    res.corruptions--;
                    res.corruptionsFixed++;
                }
            }
            ByteBuffer t;
            try {
                t = read(file, l2Offset, (int) clusterSize);
            } catch (BlockException e) {
                report.accept("ERROR: Could not read L2 table: " + e.errno().text());
                res.checkErrors++;
                throw new Failed(e.errno());
            }
            int dirty = 0;
            int entrySize = g.l2EntrySize();
            for (int j = 0; j < g.l2Entries(); j++) {
                long entry = t.getLong(j * entrySize);
                ClusterType type = type(entry);
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
                    guardWrite(java.util.EnumSet.of(Qcow2CheckOverlap.Kind.ACTIVE_L2), l2Offset, clusterSize);
                } catch (Failed f) {
                    report.accept("ERROR: Could not write L2 table; metadata overlap check failed: " + f.errno.text());
                    res.checkErrors++;
                    throw f;
                }
                try {
                    file.write(l2Offset, t.clear(), WriteFlags.NONE);
                } catch (BlockException e) {
                    report.accept("ERROR: Could not write L2 table: " + e.errno().text());
                    res.checkErrors++;
                    throw new Failed(e.errno());
                }
                res.corruptions -= dirty;
                res.corruptionsFixed += dirty;
            }
        }
    }

    // ------------------------------------------------------------------ overlap

    /**
     * Refuses a write onto metadata other than the kinds in {@code ignore}:
     * QEMU then marks the image corrupt (the header's corrupt bit) and stops
     * using it, so the repair fails with EIO. Returns normally when the
     * write is safe.
     */
    private void guardWrite(java.util.Set<Qcow2CheckOverlap.Kind> ignore, long offset, long size)
            throws Failed, BlockException {
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
        throw new Failed(Errno.EIO);
    }

    private Qcow2CheckOverlap.Layout layout() {
        return new Qcow2CheckOverlap.Layout(clusterSize, h.l1TableOffset(), l1, reftableOffset, reftableEntries,
                stored.table(), h.snapshotsOffset(), snapshotsBytes, snapshots, ext.bitmaps());
    }

    // ------------------------------------------------------------------ helpers

    /** {@code n} bytes at {@code offset}; past the end of the file they read as zeroes. */
    static ByteBuffer read(BlockNode file, long offset, int n) throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(n);
        if (n > 0) {
            file.read(offset, b);
        }
        return b.clear();
    }

    /** C's {@code %#x}: "0x" and lower-case hex, but plain "0" for zero. */
    static String hashHex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }
}
