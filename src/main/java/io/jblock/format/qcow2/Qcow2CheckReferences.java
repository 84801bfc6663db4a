package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.block.WriteFlags;
import io.jblock.format.qcow2.Qcow2CheckImage.ClusterType;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.Consumer;

/**
 * The reference counts an image's metadata calls for (QEMU's
 * calculate_refcounts), into {@link Qcow2CheckCounts}: the header; the active
 * L1 table, its L2 tables and the clusters they map, with the allocation and
 * fragmentation figures; every snapshot's tables; the snapshot table; the
 * refcount table; the bitmap directory, tables and clusters; then the
 * refcount blocks. Entries are checked as they are counted, and the
 * misaligned preallocated entries QEMU repairs are repaired here.
 */
final class Qcow2CheckReferences {
    static final long L2_STD_RESERVED_MASK = 0x3f000000000001feL;
    static final long SUBCLUSTERS_ALL_ALLOC = 0xffffffffL;
    static final long SUBCLUSTERS_ALL_ZERO = 0xffffffff00000000L;
    private static final long L1_RESERVED_MASK = Qcow2CheckImage.L1_RESERVED_MASK;
    private static final long L1_OFFSET_MASK = Qcow2CheckImage.L1_OFFSET_MASK;

    private final Qcow2CheckImage img;
    private final Qcow2CheckCounts counts;
    private final BlockNode file;
    private final Qcow2Header h;
    private final Qcow2Extensions ext;
    private final List<Qcow2Snapshots.Snapshot> snapshots;
    private final Consumer<String> report;
    private final int clusterBits;
    private final long clusterSize;
    private final Qcow2Geometry g;
    private final boolean dataFile;
    private final Qcow2CheckStoredRefcounts stored;
    private final long reftableOffset;
    private final long reftableEntries;
    /** The file's length (in whole sectors, as QEMU sees it), kept as the check changes it. */
    private long fileLength;

    private Qcow2CheckReferences(Qcow2CheckImage img, Qcow2CheckCounts counts) throws BlockException {
        this.img = img;
        this.counts = counts;
        this.file = img.file;
        this.h = img.h;
        this.ext = img.ext;
        this.snapshots = img.snapshots;
        this.report = img.report;
        this.clusterBits = img.clusterBits;
        this.clusterSize = img.clusterSize;
        this.g = img.g;
        this.dataFile = img.dataFile;
        this.stored = img.stored;
        this.reftableOffset = img.reftableOffset;
        this.reftableEntries = img.reftableEntries;
        this.fileLength = file.length();
    }

    /** Counts every reference into {@code counts}; {@code rebuild[0]} is set when the refcount blocks are unusable. */
    static void count(Qcow2CheckImage img, Qcow2CheckCounts counts, Qcow2CheckResult res, Qcow2Check.Repair fix,
                      boolean[] rebuild) throws Qcow2CheckFailed, BlockException {
        new Qcow2CheckReferences(img, counts).calculate(res, fix, rebuild);
    }


    private void calculate(Qcow2CheckResult res, Qcow2Check.Repair fix, boolean[] rebuild) throws Qcow2CheckFailed, BlockException {
        inc(res, 0, clusterSize);
        checkL1(res, h.l1TableOffset(), h.l1Size(), true, fix, true);

        if (dataFile && !snapshots.isEmpty()) {
            report.accept("ERROR " + snapshots.size() + " snapshots in image with data file");
            res.corruptions++;
        }
        for (Qcow2Snapshots.Snapshot sn : snapshots) {
            if ((sn.l1TableOffset() & (clusterSize - 1)) != 0) {
                report.accept("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_offset="
                        + Qcow2Check.hashHex(sn.l1TableOffset())
                        + ": L1 table is not cluster aligned; snapshot table entry corrupted");
                res.corruptions++;
                continue;
            }
            if (Integer.toUnsignedLong(sn.l1Size()) > Qcow2Limits.MAX_L1_BYTES / 8) {
                report.accept("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_size="
                        + Qcow2Check.hashHex(Integer.toUnsignedLong(sn.l1Size()))
                        + ": L1 table is too large; snapshot table entry corrupted");
                res.corruptions++;
                continue;
            }
            checkL1(res, sn.l1TableOffset(), sn.l1Size(), false, fix, false);
        }
        inc(res, h.snapshotsOffset(), img.snapshotsBytes);
        inc(res, reftableOffset, reftableEntries * 8);
        checkBitmaps(res);
        checkRefcountBlocks(res, fix, rebuild);
    }

    /** QEMU's qcow2_inc_refcounts_imrt: one more reference to every cluster the bytes touch. */
    private void inc(Qcow2CheckResult res, long offset, long size) throws Qcow2CheckFailed {
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
            throw new Qcow2CheckFailed(Errno.ENOMEM);
        }
        long start = offset >>> clusterBits;
        long last = (offset + size - 1) >>> clusterBits;
        for (long k = start; k <= last; k++) {
            if (k >= counts.size() && !counts.growTo(k + 1)) {
                res.checkErrors++;
                throw new Qcow2CheckFailed(Errno.ENOMEM);
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

    private void checkL1(Qcow2CheckResult res, long offset, int size, boolean fragInfo, Qcow2Check.Repair fix,
                         boolean active) throws Qcow2CheckFailed, BlockException {
        if (size == 0) {
            return;
        }
        long bytes = Integer.toUnsignedLong(size) * 8;
        inc(res, offset, bytes);
        ByteBuffer b;
        try {
            b = Qcow2CheckImage.read(file, offset, (int) bytes);
        } catch (BlockException e) {
            report.accept("ERROR: I/O error in check_refcounts_l1");
            res.checkErrors++;
            throw new Qcow2CheckFailed(e.errno());
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

    private void checkL2(Qcow2CheckResult res, long l2Offset, boolean fragInfo, Qcow2Check.Repair fix, boolean active)
            throws Qcow2CheckFailed, BlockException {
        int entrySize = g.l2EntrySize();
        int n = (int) g.l2Entries();
        ByteBuffer t;
        try {
            t = Qcow2CheckImage.read(file, l2Offset, (int) clusterSize);
        } catch (BlockException e) {
            report.accept("ERROR: I/O error in check_refcounts_l2");
            res.checkErrors++;
            throw new Qcow2CheckFailed(e.errno());
        }
        long nextContiguous = 0;
        for (int i = 0; i < n; i++) {
            long entry = t.getLong(i * entrySize);
            long bitmap = g.extendedL2() ? t.getLong(i * entrySize + 8) : 0;
            ClusterType type = img.type(entry);
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
            throws Qcow2CheckFailed, BlockException {
        int entrySize = g.l2EntrySize();
        long at = l2Offset + (long) index * entrySize;
        try {
            img.guardWrite(java.util.EnumSet.of(active ? Qcow2CheckOverlap.Kind.ACTIVE_L2
                    : Qcow2CheckOverlap.Kind.INACTIVE_L2), at, entrySize);
        } catch (Qcow2CheckFailed f) {
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

    /**
     * The bitmaps extension: the directory, each bitmap's table and the
     * clusters its entries name. A directory that cannot be parsed is a
     * corruption that stops the check (EINVAL), as in QEMU.
     */
    private void checkBitmaps(Qcow2CheckResult res) throws Qcow2CheckFailed, BlockException {
        Qcow2Extensions.Bitmaps bm = ext.bitmaps();
        if (bm == null) {
            return;
        }
        inc(res, bm.directoryOffset(), bm.directorySize());
        ByteBuffer dir = Qcow2CheckImage.read(file, bm.directoryOffset(), (int) bm.directorySize());
        long at = 0;
        for (long n = 0; n < bm.count(); n++) {
            if (at + 24 > bm.directorySize()) {
                res.corruptions++;
                throw new Qcow2CheckFailed(Errno.EINVAL);
            }
            long tableOffset = dir.getLong((int) at);
            long tableSize = Integer.toUnsignedLong(dir.getInt((int) at + 8));
            int nameSize = Short.toUnsignedInt(dir.getShort((int) at + 18));
            long extra = Integer.toUnsignedLong(dir.getInt((int) at + 20));
            long entryBytes = (24 + extra + nameSize + 7) & ~7L;
            if (at + entryBytes > bm.directorySize() || (tableOffset & (clusterSize - 1)) != 0
                    || tableSize > (Qcow2Limits.MAX_L1_BYTES / 8)) {
                res.corruptions++;
                throw new Qcow2CheckFailed(Errno.EINVAL);
            }
            inc(res, tableOffset, tableSize * 8);
            ByteBuffer table;
            try {
                table = Qcow2CheckImage.read(file, tableOffset, (int) tableSize * 8);
            } catch (BlockException e) {
                res.corruptions++;
                throw new Qcow2CheckFailed(e.errno());
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
    private void checkRefcountBlocks(Qcow2CheckResult res, Qcow2Check.Repair fix, boolean[] rebuild)
            throws Qcow2CheckFailed, BlockException {
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
    private Errno growFileFor(long offset) throws Qcow2CheckFailed {
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
        long n = img.clusters(size);
        if (!counts.growTo(n)) {
            return Errno.ENOMEM;
        }
        return (offset >>> clusterBits) < counts.size() ? null : Errno.EINVAL;
    }
}
