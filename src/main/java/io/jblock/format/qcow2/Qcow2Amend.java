package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The changes {@code qemu-img amend} makes to an open, read-write qcow2
 * image, each as QEMU 7.2's qcow2_amend_options makes it (the caller runs
 * them in QEMU's order: upgrade, refcount width, header, lazy refcounts,
 * size, downgrade). Each change leaves the image consistent on disk: the
 * metadata caches are written and the file flushed before a header write
 * makes a change visible.
 *
 * <p>After {@link #changeRefcountBits} the open node's refcount structures
 * are stale: the caller must close it, and reopen the image for any further
 * change ({@link #needsReopen}).
 */
public final class Qcow2Amend {
    /** Progress of one operation: {@code done} of {@code total} (QEMU's BlockDriverAmendStatusCB). */
    public interface Status {
        void report(long done, long total);
    }

    private final Qcow2Node node;
    private final Qcow2Geometry g;
    private final BlockNode file;
    private final Qcow2ClusterMap map;
    private final Qcow2Refcounts refcounts;
    private final ReentrantLock meta;
    private boolean stale;

    Qcow2Amend(Qcow2Node node, Qcow2Geometry g, BlockNode file, Qcow2ClusterMap map, Qcow2Refcounts refcounts,
               ReentrantLock meta) {
        this.node = node;
        this.g = g;
        this.file = file;
        this.map = map;
        this.refcounts = refcounts;
        this.meta = meta;
    }

    /** The header as it is in the file now. */
    private Qcow2Header header() throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(112);
        file.read(0, b);
        return Qcow2Header.decode(b.clear());
    }

    private Qcow2Extensions extensions(Qcow2Header h) throws BlockException {
        ByteBuffer b = ByteBuffer.allocate((int) h.clusterSize());
        file.read(0, b);
        return Qcow2Extensions.decode(h, b.clear());
    }

    public int version() throws BlockException {
        return header().version();
    }

    public int refcountBits() throws BlockException {
        return header().refcountBits();
    }

    public boolean lazyRefcounts() throws BlockException {
        return header().lazyRefcounts();
    }

    public boolean hasDataFile() throws BlockException {
        return header().hasDataFile();
    }

    public boolean dataFileRaw() throws BlockException {
        return header().dataFileRaw();
    }

    public boolean encrypted() throws BlockException {
        return header().cryptMethod() != Qcow2Header.CRYPT_NONE;
    }

    public boolean luksEncrypted() throws BlockException {
        return header().cryptMethod() == Qcow2Header.CRYPT_LUKS;
    }

    /** The backing file name the header records, or null. */
    public String backingFile() throws BlockException {
        Qcow2Header h = header();
        if (h.backingFileOffset() == 0 || h.backingFileSize() == 0) {
            return null;
        }
        ByteBuffer b = ByteBuffer.allocate(h.backingFileSize());
        file.read(h.backingFileOffset(), b);
        return new String(b.array(), java.nio.charset.StandardCharsets.UTF_8);
    }

    /** The backing format the header records, or null. */
    public String backingFormat() throws BlockException {
        Qcow2Header h = header();
        return backingFile() == null ? null : extensions(h).backingFormat();
    }

    /** Whether the open node may no longer be used for changes (the refcount width changed). */
    public boolean needsReopen() {
        return stale;
    }

    private void checkFresh() {
        if (stale) {
            throw new IllegalStateException("the refcount width changed: reopen the image first");
        }
    }

    /** Every cached change in the file and the file flushed: what a header write may build on. */
    private void settle() throws BlockException {
        node.flushToOs();
        file.flush();
    }

    private Qcow2Header rewrite(java.util.function.UnaryOperator<Qcow2Header> fields, String dataFile)
            throws BlockException {
        meta.lock();
        try {
            Qcow2Header h = Qcow2HeaderWriter.rewrite(file, g.clusterSize(), new Qcow2HeaderWriter.Edit(fields,
                    dataFile));
            file.flush();
            return h;
        } finally {
            meta.unlock();
        }
    }

    /** A copy of {@code h} with other version, feature bits and refcount structure. */
    static Qcow2Header with(Qcow2Header h, int version, long incompatible, long compatible, long autoclear,
                            int refcountOrder, long reftableOffset, int reftableClusters) {
        return new Qcow2Header(version, h.backingFileOffset(), h.backingFileSize(), h.clusterBits(), h.size(),
                h.cryptMethod(), h.l1Size(), h.l1TableOffset(), reftableOffset, reftableClusters,
                h.snapshotCount(), h.snapshotsOffset(), incompatible, compatible, autoclear, refcountOrder,
                version >= 3 ? 112 : Qcow2Header.V2_HEADER_LENGTH, version >= 3 ? h.compressionType() : 0);
    }

    private static Qcow2Header with(Qcow2Header h, int version, long incompatible, long compatible,
                                    long autoclear) {
        return with(h, version, incompatible, compatible, autoclear, h.refcountOrder(), h.refcountTableOffset(),
                h.refcountTableClusters());
    }

    /**
     * Version 2 to 3 (qcow2_upgrade): the snapshot table is written again
     * when an entry lacks the extra data version 3 requires (its VM state
     * size and disk size), then the header.
     */
    public void upgrade(Status status) throws BlockException {
        checkFresh();
        status.report(0, 2);
        boolean snapshotUpdate = node.snapshots().stream().anyMatch(s -> s.diskSize() < 0);
        if (snapshotUpdate) {
            node.internalSnapshots().rewriteTableForUpgrade();
        }
        status.report(1, 2);
        settle();
        rewrite(h -> with(h, 3, 0, 0, 0, 4, h.refcountTableOffset(), h.refcountTableClusters()), null);
        status.report(2, 2);
    }

    /** A new width of the reference counts (qcow2_change_refcount_order); the node must be reopened after. */
    public void changeRefcountBits(int bits, Status status) throws BlockException {
        checkFresh();
        // The bitmaps are stored now, through the refcounts they were loaded with; left for close, they would
        // be stored through this node's refcount structures, which the change below replaces.
        node.bitmaps().storeAndRelease();
        settle();
        meta.lock();
        try {
            map.writeDirty();
            refcounts.flush();
            Qcow2RefcountOrder.change(node, file, refcounts, g.clusterBits(), Integer.numberOfTrailingZeros(bits),
                    status::report);
            stale = true;
        } finally {
            meta.unlock();
        }
    }

    /**
     * The header written again (QEMU calls qcow2_update_header whatever
     * changed), with the data-file-raw bit and the data file name
     * ({@code dataFile}: null keeps it, "" drops it).
     */
    public void updateHeader(boolean dataFileRaw, String dataFile) throws BlockException {
        settle();
        rewrite(h -> with(h, h.version(), h.incompatibleFeatures(), h.compatibleFeatures(),
                dataFileRaw ? h.autoclearFeatures() | Qcow2Header.AUTOCLEAR_DATA_FILE_RAW
                        : h.autoclearFeatures() & ~Qcow2Header.AUTOCLEAR_DATA_FILE_RAW), dataFile);
    }

    /** Lazy refcounts on, or off after making the image clean (its caches written, the dirty bit cleared). */
    public void setLazyRefcounts(boolean on) throws BlockException {
        if (on) {
            settle();
            rewrite(h -> with(h, h.version(), h.incompatibleFeatures(),
                    h.compatibleFeatures() | Qcow2Header.COMPAT_LAZY_REFCOUNTS, h.autoclearFeatures()), null);
        } else {
            node.markCleanForAmend();
            settle();
            rewrite(h -> with(h, h.version(), h.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_DIRTY,
                    h.compatibleFeatures() & ~Qcow2Header.COMPAT_LAZY_REFCOUNTS, h.autoclearFeatures()), null);
        }
    }

    /**
     * Version 3 to 2 (qcow2_downgrade), with QEMU's refusals in its order;
     * zero clusters are expanded (or, with no backing file, just emptied)
     * in the active layer and every snapshot, as version 2 has none.
     */
    public void downgrade(Status status) throws BlockException {
        checkFresh();
        Qcow2Header h = header();
        if (h.refcountOrder() != 4) {
            throw new BlockException(Errno.ENOTSUP, "compat=0.10 requires refcount_bits=16");
        }
        if (h.hasDataFile()) {
            throw new BlockException(Errno.ENOTSUP, "Cannot downgrade an image with a data file");
        }
        for (Qcow2Snapshots.Snapshot s : node.snapshots()) {
            long disk = s.diskSize() < 0 ? node.length() : s.diskSize();
            if (Long.compareUnsigned(s.vmStateSize(), 0xffffffffL) > 0 || disk != node.length()) {
                throw new BlockException(Errno.ENOTSUP, "Internal snapshots prevent downgrade of image");
            }
        }
        node.markCleanForAmend();
        h = header();
        if ((h.incompatibleFeatures() & Qcow2Header.INCOMPAT_DIRTY) != 0) {
            settle();
            h = rewrite(x -> with(x, x.version(), x.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_DIRTY,
                    x.compatibleFeatures(), x.autoclearFeatures()), null);
        }
        long blocking = h.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_COMPRESSION;
        if (blocking != 0) {
            throw new BlockException(Errno.ENOTSUP, "Cannot downgrade an image with incompatible features 0x"
                    + Long.toHexString(blocking) + " set");
        }
        settle();
        meta.lock();
        try {
            new ZeroExpansion(status).run();
            if ((h.incompatibleFeatures() & Qcow2Header.INCOMPAT_COMPRESSION) != 0 && hasCompressedClusters()) {
                throw new BlockException(Errno.ENOTSUP, "Cannot downgrade an image with zstd compression type and"
                        + " existing compressed clusters");
            }
        } finally {
            meta.unlock();
        }
        rewrite(x -> with(x, 2, 0, 0, 0), null);
    }

    private boolean hasCompressedClusters() throws BlockException {
        long[] l1 = map.l1Copy();
        for (long e : l1) {
            long l2 = e & Qcow2L2Entry.OFFSET_MASK;
            if (l2 == 0) {
                continue;
            }
            long[] table = readL2(l2);
            for (long entry : table) {
                if ((entry & Qcow2L2Entry.COMPRESSED) != 0) {
                    return true;
                }
            }
        }
        return false;
    }

    private long[] readL2(long offset) throws BlockException {
        if ((offset & (g.clusterSize() - 1)) != 0) {
            throw node.markCorrupt("L2 table offset 0x" + Long.toHexString(offset) + " unaligned");
        }
        ByteBuffer b = ByteBuffer.allocate((int) g.clusterSize());
        file.read(offset, b);
        long[] t = new long[(int) (g.clusterSize() / 8)];
        b.flip();
        b.asLongBuffer().get(t);
        return t;
    }

    /** QEMU's qcow2_expand_zero_clusters, straight on the file (the caches were written first). */
    private final class ZeroExpansion {
        private final Status status;
        private long visited;
        private long total;

        ZeroExpansion(Status status) {
            this.status = status;
        }

        void run() throws BlockException {
            long[] active = map.l1Copy();
            List<Qcow2Snapshots.Snapshot> snapshots = node.snapshots();
            total = active.length;
            for (Qcow2Snapshots.Snapshot s : snapshots) {
                total += s.l1Size();
            }
            expand(active);
            for (Qcow2Snapshots.Snapshot s : snapshots) {
                long[] l1 = new long[s.l1Size()];
                if (l1.length > 0) {
                    ByteBuffer b = ByteBuffer.allocate(l1.length * 8);
                    file.read(s.l1TableOffset(), b);
                    b.flip();
                    b.asLongBuffer().get(l1);
                }
                expand(l1);
            }
            file.flush();
        }

        private void expand(long[] l1) throws BlockException {
            long clusterSize = g.clusterSize();
            for (long l1Entry : l1) {
                long l2Offset = l1Entry & Qcow2L2Entry.OFFSET_MASK;
                if (l2Offset != 0) {
                    long l2Refcount = refcounts.refcount(l2Offset);
                    long[] l2 = readL2(l2Offset);
                    boolean dirty = false;
                    for (int j = 0; j < l2.length; j++) {
                        long e = l2[j];
                        if ((e & Qcow2L2Entry.COMPRESSED) != 0 || (e & Qcow2L2Entry.ZERO) == 0) {
                            continue;
                        }
                        long offset = e & Qcow2L2Entry.OFFSET_MASK;
                        if (offset == 0) {
                            if (node.backing() == null) {
                                // Nothing below: an unallocated cluster reads as zeroes too.
                                l2[j] = 0;
                                dirty = true;
                                continue;
                            }
                            offset = refcounts.allocate(1, "expanded zero cluster");
                            node.fileGrewTo(offset + clusterSize);
                            if (l2Refcount > 1) {
                                refcounts.update(offset, clusterSize, l2Refcount - 1);
                            }
                        }
                        file.writeZeroes(offset, clusterSize, 0);
                        l2[j] = l2Refcount == 1 ? offset | Qcow2L2Entry.COPIED : offset;
                        dirty = true;
                    }
                    if (dirty) {
                        // The new clusters' counts and zeroes reach the file before the entries naming them.
                        refcounts.flush();
                        ByteBuffer b = ByteBuffer.allocate((int) clusterSize);
                        b.asLongBuffer().put(l2);
                        file.write(l2Offset, b, 0);
                        map.forget(l2Offset);
                    }
                }
                visited++;
                status.report(visited, total);
            }
        }
    }
}
