package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;

import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Changing a qcow2 image's virtual size, as QEMU 7.2's qcow2_co_truncate does:
 * <ul>
 *   <li>shrink: the cropped clusters are fully discarded (freed), L2 tables
 *       past the new end are unhooked from L1 and freed (the L1 table keeps
 *       its size), and the file is cut after its last used cluster;</li>
 *   <li>grow: the L1 table grows to exactly what the new size needs; the new
 *       area reads as zero (or from the backing file);</li>
 *   <li>then the new size goes into the header.</li>
 * </ul>
 * Preallocation: off; metadata (clusters allocated and mapped, reading as
 * zero); falloc and full also reserve or write the new clusters in the file
 * (jblock places them where its allocator finds room, not necessarily in
 * one run at the end as QEMU does). Runs under the metadata lock
 * throughout: a resize is rare and must not race with allocations.
 */
final class Qcow2Resize {
    /** Header offset of the virtual size (u64). */
    private static final int HEADER_SIZE = 24;

    private final Qcow2Node node;
    private final Qcow2Geometry g;
    private final Qcow2Header header;
    private final BlockNode file;
    private final BlockNode dataFile;
    private final Qcow2ClusterMap map;
    private final Qcow2Refcounts refcounts;
    private final Qcow2ZeroWrites writes;
    private final ReentrantLock meta;

    Qcow2Resize(Qcow2Node node, Qcow2Geometry g, Qcow2Header header, BlockNode file, BlockNode dataFile,
                Qcow2ClusterMap map, Qcow2Refcounts refcounts, Qcow2ZeroWrites writes, ReentrantLock meta) {
        this.node = node;
        this.g = g;
        this.header = header;
        this.file = file;
        this.dataFile = dataFile;
        this.map = map;
        this.refcounts = refcounts;
        this.writes = writes;
        this.meta = meta;
    }

    void resize(long oldSize, long newSize, Prealloc prealloc) throws BlockException {
        if (newSize % 512 != 0) {
            throw new BlockException(Errno.EINVAL, "The new size must be a multiple of 512");
        }
        if (!node.snapshots().isEmpty() && header.version() < 3) {
            throw new BlockException(Errno.ENOTSUP, "Can't resize a v2 image which has snapshots");
        }
        node.bitmaps().checkResizable();
        long l1Span = g.l1Span();
        long newL1Size = newSize / l1Span + (newSize % l1Span != 0 ? 1 : 0);
        if (newSize < oldSize) {
            if (prealloc != Prealloc.OFF) {
                throw new BlockException(Errno.EINVAL, "Preallocation can't be used for shrinking an image");
            }
            long cs = g.clusterSize();
            long cropFrom = (newSize + cs - 1) & -cs;
            zeroTail(newSize, Math.min(cropFrom, oldSize));
            if (cropFrom < oldSize) {
                writes.discardFully(cropFrom, oldSize);
            }
            meta.lock();
            try {
                shrinkL1((int) newL1Size);
                cutFileTail();
            } finally {
                meta.unlock();
            }
        }
        // QEMU's bdrv_co_truncate: over a backing file longer than the old size, the new area must read as
        // zeroes, not as the backing file's data (BDRV_REQ_ZERO_WRITE). Version 2 has no zero clusters: QEMU
        // refuses then, and so does jblock, before changing anything.
        BlockNode backing = node.backing();
        boolean zeroNew = newSize > oldSize && backing != null && backing.length() > oldSize;
        long zeroStart = (oldSize + g.subclusterSize() - 1) & -g.subclusterSize();
        if (zeroNew && header.version() < 3 && newSize > zeroStart) {
            throw new BlockException(Errno.ENOTSUP, "Failed to zero out new clusters: " + Errno.ENOTSUP.text());
        }
        if (newSize > oldSize) {
            meta.lock();
            try {
                map.growL1(newL1Size, true);
            } finally {
                meta.unlock();
            }
            if (prealloc != Prealloc.OFF) {
                preallocate(oldSize, newSize, prealloc);
            }
        }
        if (prealloc == Prealloc.OFF && dataFile != null) {
            dataFile.truncate(newSize, false, Prealloc.OFF);
            node.dataResized(newSize);
        }
        if (zeroNew && prealloc == Prealloc.OFF) {
            zeroNewArea(oldSize, newSize);
        }
        meta.lock();
        try {
            file.write(HEADER_SIZE, ByteBuffer.allocate(8).putLong(0, newSize), 0);
            node.sizeChanged(newSize);
        } finally {
            meta.unlock();
        }
        if (newSize > oldSize) {
            zeroTail(oldSize, Math.min(newSize, (oldSize + g.clusterSize() - 1) & -g.clusterSize()));
        }
    }

    /** Whether every byte of {@code [from, to)} is allocated in this image (not read from a backing file). */
    private boolean allocatedHere(long from, long to) throws BlockException {
        for (long pos = from; pos < to; ) {
            io.jblock.block.BlockStatus st = node.blockStatus(pos, to - pos);
            if (st.depth() != 0) {
                return false;
            }
            pos += st.length();
        }
        return true;
    }

    /**
     * Zeroes {@code [oldSize, newSize)} before the header takes the new size,
     * as QEMU zeroes it before: zero clusters (and explicit zeroes for a
     * partial head), their L2 tables in the file first, so no crash can show
     * the backing file's data there. The image has the new size in memory
     * meanwhile (the zero writes stay inside it), and the old one again if
     * they fail.
     */
    private void zeroNewArea(long oldSize, long newSize) throws BlockException {
        node.sizeChanged(newSize);
        try {
            writes.writeZeroes(oldSize, newSize - oldSize, 0);
            node.flushToOs();
            file.flush();
        } catch (BlockException e) {
            node.sizeChanged(oldSize);
            throw new BlockException(e.errno(), "Failed to zero out new clusters: " + e.getMessage(), e);
        }
    }

    /**
     * The bytes of a partial last cluster past the end of the image may hold
     * old data (QEMU keeps it, and shows it again when the image grows);
     * jblock zeroes them, so a grown area always reads as zero.
     */
    private void zeroTail(long from, long to) throws BlockException {
        if (from < to && !node.readsAsZero(from, to - from)) {
            writes.writeZeroes(from, to - from, 0);
        }
    }

    /** QEMU's qcow2_shrink_l1_table: entries past the new end are cleared in the file, then their tables freed. */
    private void shrinkL1(int newL1Size) throws BlockException {
        map.writeDirty();
        long[] l1 = map.l1Copy();
        for (int i = newL1Size; i < l1.length; i++) {
            long l2 = l1[i] & Qcow2L2Entry.OFFSET_MASK;
            if (l2 == 0) {
                continue;
            }
            map.writeL1Entry(i, 0);
            map.forget(l2);
            refcounts.free(l2, g.clusterSize());
        }
    }

    /** Cuts the image file after its last cluster in use, once every dirty block is written. */
    private void cutFileTail() throws BlockException {
        map.writeDirty();
        refcounts.flush();
        long cs = g.clusterSize();
        long fileLength = file.length();
        long last = (fileLength + cs - 1) / cs - 1;
        while (last >= 0 && refcounts.refcount(last * cs) == 0) {
            last--;
        }
        long end = (last + 1) * cs;
        if (end < fileLength) {
            file.truncate(end, false, Prealloc.OFF);
            node.fileShrunk(end);
        }
    }

    /**
     * Preallocation of the grown area: every cluster gets a host
     * cluster and an L2 entry that maps it. A host cluster inside the file
     * (a freed one, reused) is zeroed, since it may hold old bytes; one past
     * the end reads as zero once the file is extended to cover it.
     */
    private void preallocate(long from, long to, Prealloc prealloc) throws BlockException {
        long cs = g.clusterSize();
        long end = 0;
        long head = from & -cs;
        if (head < from && !g.externalData()) {
            // The last cluster of the old size may be unallocated and read from the backing file: it must not
            // become a cluster of zeroes. A write of what it reads now allocates it (with its copy-on-write);
            // the rest of it, past the old end, is zeroed after the resize (zeroTail).
            if (node.backing() != null && !allocatedHere(head, from)) {
                ByteBuffer keep = ByteBuffer.allocate((int) (from - head));
                node.read(head, keep);
                node.write(head, keep.flip(), 0);
            }
        }
        for (long pos = from & -cs; pos < to; pos += cs) {
            meta.lock();
            try {
                Qcow2ClusterMap.Slot slot = map.slotForWrite(pos);
                long entry = slot.entry();
                boolean hasHost = (entry & Qcow2L2Entry.COMPRESSED) == 0
                        && ((entry & Qcow2L2Entry.OFFSET_MASK) != 0
                        || (g.externalData() && (entry & Qcow2L2Entry.COPIED) != 0));
                if (hasHost || (entry & Qcow2L2Entry.COMPRESSED) != 0) {
                    continue;
                }
                long host = g.externalData() ? pos : refcounts.allocate(1, "data cluster");
                BlockNode target = dataFile != null ? dataFile : file;
                if (host < target.length()) {
                    target.writeZeroes(host, cs, 0);
                }
                end = Math.max(end, host + cs);
                slot = map.slotForWrite(pos);
                map.set(slot, host | Qcow2L2Entry.COPIED, g.extendedL2() ? 0xffffffffL : 0);
                map.trim();
            } finally {
                meta.unlock();
            }
        }
        BlockNode target = dataFile != null ? dataFile : file;
        if (end > target.length()) {
            // falloc and full reserve (or write) the new data clusters in the file, as QEMU passes the mode down.
            target.truncate(end, false, prealloc == Prealloc.METADATA ? Prealloc.OFF : prealloc);
        }
        node.dataGrew(end);
    }
}
