package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Zero-writes and discards on a qcow2 image (QEMU 7.2's
 * qcow2_co_pwrite_zeroes, qcow2_subcluster_zeroize, qcow2_co_pdiscard and
 * qcow2_cluster_discard): L2 entries become zero (version 3) or empty, and
 * the clusters they held are freed, the L2 entries reaching the file first.
 * Requests hold their guest clusters in the same {@link Qcow2ClusterLocks}
 * as {@link Qcow2Writes}; what cannot be done in the L2 entries falls back to
 * writing zeroes through it.
 */
final class Qcow2ZeroWrites {
    /** A zero-write or discard takes at most this many clusters at a time, so one request never holds the image. */
    private static final long CHUNK_CLUSTERS = 1024;

    private final Qcow2Node node;
    private final Qcow2Geometry g;
    private final int version;
    private final BlockNode data;
    private final boolean dataFileRaw;
    private final boolean hasBacking;
    private final Qcow2ClusterMap map;
    private final Qcow2Refcounts refcounts;
    private final ReentrantLock meta;
    private final Qcow2ClusterLocks clusters;
    private final Qcow2Writes writes;

    Qcow2ZeroWrites(Qcow2Node node, Qcow2Geometry g, int version, BlockNode file, BlockNode dataFile,
                    boolean dataFileRaw, boolean hasBacking, Qcow2ClusterMap map, Qcow2Refcounts refcounts,
                    ReentrantLock meta, Qcow2ClusterLocks clusters, Qcow2Writes writes) {
        this.node = node;
        this.g = g;
        this.version = version;
        this.data = dataFile != null ? dataFile : file;
        this.dataFileRaw = dataFileRaw;
        this.hasBacking = hasBacking;
        this.map = map;
        this.refcounts = refcounts;
        this.meta = meta;
        this.clusters = clusters;
        this.writes = writes;
    }

    /**
     * QEMU's qcow2_co_pwrite_zeroes: version 3 marks whole subclusters zero
     * (freeing them with MAY_UNMAP); a partial subcluster is done the same way
     * when the rest of it already reads as zero, else with a buffer of zeroes
     * (or ENOTSUP under NO_FALLBACK). Version 2 has no zero flag: without a
     * backing file QEMU deallocates the clusters instead (an unallocated
     * cluster reads as zero there), with one it writes zero buffers.
     */
    void writeZeroes(long offset, long length, int flags) throws BlockException {
        if (version < 3 && hasBacking) {
            fallback(offset, length, flags);
            return;
        }
        long size = node.length();
        long sc = g.subclusterSize();
        long end = offset + length;
        long alignedStart = Math.min(end, (offset + sc - 1) & -sc);
        long alignedEnd = end == size ? end : Math.max(alignedStart, end & -sc);
        if (offset < alignedStart) {
            partialZeroes(offset, alignedStart - offset, flags);
        }
        if (alignedStart < alignedEnd) {
            zeroize(alignedStart, alignedEnd - alignedStart, flags);
        }
        if (alignedEnd < end) {
            partialZeroes(alignedEnd, end - alignedEnd, flags);
        }
    }

    private void partialZeroes(long offset, long length, int flags) throws BlockException {
        long sc = g.subclusterSize();
        long start = offset & -sc;
        long end = Math.min(start + sc, node.length());
        long c = writes.clusterOf(start);
        boolean done = false;
        // Checked and zeroed under the cluster's lock: no write may slip in between (QEMU re-checks under its lock).
        clusters.acquire(c, c);
        try {
            if (node.readsAsZero(start, offset - start)
                    && node.readsAsZero(offset + length, end - (offset + length))) {
                Qcow2L2Entry.Type type;
                meta.lock();
                try {
                    type = map.lookup(start, 1).type();
                } finally {
                    meta.unlock();
                }
                if (type.readsFromBacking() || type.isZero()) {
                    zeroizeHeld(start, end, flags);
                    done = true;
                }
            }
        } finally {
            clusters.release(c, c);
        }
        if (!done) {
            fallback(offset, length, flags);
        }
    }

    private void fallback(long offset, long length, int flags) throws BlockException {
        if (WriteFlags.has(flags, WriteFlags.NO_FALLBACK)) {
            throw new BlockException(Errno.ENOTSUP, "qcow2 cannot zero " + length + " bytes at offset " + offset
                    + " without writing them");
        }
        int chunk = (int) Math.min(length, 1 << 20);
        ByteBuffer zeroes = ByteBuffer.allocate(chunk);
        for (long pos = offset; pos < offset + length; ) {
            int n = (int) Math.min(chunk, offset + length - pos);
            writes.write(pos, zeroes.clear().limit(n));
            pos += n;
        }
    }

    /** {@link #zeroize} of one subcluster whose cluster the caller holds. */
    private void zeroizeHeld(long start, long end, int flags) throws BlockException {
        if (version < 3) {
            discardChunk(start, end, false, true);
            return;
        }
        if (dataFileRaw) {
            data.writeZeroes(start, end - start, flags & WriteFlags.MAY_UNMAP);
        }
        zeroChunk(start, end, WriteFlags.has(flags, WriteFlags.MAY_UNMAP), flags, true);
    }

    /** Marks subcluster-aligned guest bytes as zero (QEMU's qcow2_subcluster_zeroize). */
    private void zeroize(long offset, long length, int flags) throws BlockException {
        if (version < 3) {
            for (long chunkStart = offset; chunkStart < offset + length; ) {
                long chunkEnd = Math.min(offset + length, (writes.clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits());
                discardChunk(chunkStart, chunkEnd, false, false);
                chunkStart = chunkEnd;
            }
            return;
        }
        if (dataFileRaw) {
            data.writeZeroes(offset, length, flags & WriteFlags.MAY_UNMAP);
        }
        boolean mayUnmap = WriteFlags.has(flags, WriteFlags.MAY_UNMAP);
        long end = offset + length;
        for (long chunkStart = offset; chunkStart < end; ) {
            long chunkEnd = Math.min(end, ((writes.clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits()));
            zeroChunk(chunkStart, chunkEnd, mayUnmap, flags, false);
            chunkStart = chunkEnd;
        }
    }

    /** {@code held}: the caller holds the clusters already (and the range is one subcluster, never compressed). */
    private void zeroChunk(long start, long end, boolean mayUnmap, int flags, boolean held) throws BlockException {
        long first = writes.clusterOf(start);
        long last = writes.clusterOf(end - 1);
        List<Long> compressedPartial = new ArrayList<>();
        if (!held) {
            clusters.acquire(first, last);
        }
        try {
            List<Long> freed = new ArrayList<>();
            meta.lock();
            try {
                node.checkUsable();
                for (long pos = start; pos < end; ) {
                    long clusterGuest = pos & -g.clusterSize();
                    long next = Math.min(end, clusterGuest + g.clusterSize());
                    boolean whole = pos == clusterGuest && (next == clusterGuest + g.clusterSize()
                            || next == node.length());
                    Qcow2ClusterMap.Slot slot = map.slotForWrite(clusterGuest);
                    long entry = slot.entry();
                    long bitmap = slot.bitmap(g);
                    boolean compressed = (entry & Qcow2L2Entry.COMPRESSED) != 0;
                    if (whole) {
                        boolean allocated = compressed || (entry & Qcow2L2Entry.OFFSET_MASK) != 0
                                || (g.externalData() && (entry & Qcow2L2Entry.COPIED) != 0);
                        boolean unmap = compressed || (mayUnmap && allocated);
                        long newEntry = unmap ? 0 : entry;
                        long newBitmap = bitmap;
                        if (g.extendedL2()) {
                            newBitmap = Qcow2Writes.ALL_SUBCLUSTERS << 32;
                        } else {
                            newEntry |= Qcow2L2Entry.ZERO;
                        }
                        if (newEntry != entry || newBitmap != bitmap) {
                            map.set(slot, newEntry, newBitmap);
                            if (unmap) {
                                freed.add(entry);
                            }
                        }
                    } else if (compressed) {
                        compressedPartial.add(pos);
                        compressedPartial.add(next);
                    } else {
                        int scFirst = (int) ((pos - clusterGuest) >>> g.subclusterBits());
                        int scLast = (int) ((next - 1 - clusterGuest) >>> g.subclusterBits());
                        long mask = Qcow2Writes.subclusterMask(scFirst, scLast);
                        long newBitmap = (bitmap | (mask << 32)) & ~mask;
                        if (newBitmap != bitmap) {
                            map.set(slot, entry, newBitmap);
                        }
                    }
                    pos = next;
                }
                releaseFreed(freed);
                map.trim();
            } finally {
                meta.unlock();
            }
        } finally {
            if (!held) {
                clusters.release(first, last);
            }
        }
        if (held && !compressedPartial.isEmpty()) {
            throw new IllegalStateException("a held subcluster zeroize found a compressed cluster");
        }
        // QEMU cannot zero part of a compressed cluster in its L2 entry either: it writes zeroes (copy-on-write).
        for (int i = 0; i < compressedPartial.size(); i += 2) {
            long from = compressedPartial.get(i);
            fallback(from, compressedPartial.get(i + 1) - from, flags);
        }
    }

    /** L2 entries first, then the refcounts drop; freed data clusters are discarded below (QEMU's discard passthrough). */
    private void releaseFreed(List<Long> freed) throws BlockException {
        if (freed.isEmpty()) {
            return;
        }
        map.writeDirty();
        for (long entry : freed) {
            writes.freeAny(entry);
            long host = entry & Qcow2L2Entry.OFFSET_MASK;
            if ((entry & Qcow2L2Entry.COMPRESSED) != 0 || dataFileRaw) {
                continue;
            }
            if ((g.externalData() || (host != 0 && refcounts.refcount(host) == 0))
                    && refcounts.passesDiscard(Qcow2Refcounts.FreeReason.REQUEST)) {
                data.discard(host, g.clusterSize());
            }
        }
    }

    // ---------------------------------------------------------------- discard

    /**
     * QEMU's qcow2_co_pdiscard: whole clusters only (and the last, partial
     * cluster of an image); a discarded cluster reads as zero afterwards in
     * version 3 (zero flag), and from the backing file in version 2.
     */
    void discard(long offset, long length) throws BlockException {
        long cs = g.clusterSize();
        long size = node.length();
        long start = (offset + cs - 1) & -cs;
        long end = offset + length == size ? offset + length : (offset + length) & -cs;
        for (long chunkStart = start; chunkStart < end; ) {
            long chunkEnd = Math.min(end, (writes.clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits());
            discardChunk(chunkStart, chunkEnd, false, false);
            chunkStart = chunkEnd;
        }
    }

    /**
     * QEMU's full discard (a shrink's cropped clusters): the entries become
     * empty, so the bytes would read from the backing file, and the clusters are freed.
     */
    void discardFully(long start, long end) throws BlockException {
        for (long chunkStart = start; chunkStart < end; ) {
            long chunkEnd = Math.min(end, (writes.clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits());
            discardChunk(chunkStart, chunkEnd, true, false);
            chunkStart = chunkEnd;
        }
    }

    private void discardChunk(long start, long end, boolean full, boolean held) throws BlockException {
        long first = writes.clusterOf(start);
        long last = writes.clusterOf(end - 1);
        if (!held) {
            clusters.acquire(first, last);
        }
        try {
            if (dataFileRaw) {
                // QEMU only passes the discard down, which may leave old bytes in the raw file; jblock keeps the
                // raw data file equal to what the guest reads (zero) by zeroing it there.
                data.writeZeroes(start, end - start, WriteFlags.MAY_UNMAP);
            }
            meta.lock();
            try {
                node.checkUsable();
                List<Long> freed = new ArrayList<>();
                for (long pos = start; pos < end; pos += g.clusterSize()) {
                    Qcow2ClusterMap.Slot slot = map.slotIfPresent(pos);
                    if (slot == null && (!hasBacking || full)) {
                        continue;
                    }
                    if (slot == null || !isOwned(pos)) {
                        slot = map.slotForWrite(pos);
                    }
                    long entry = slot.entry();
                    long bitmap = slot.bitmap(g);
                    boolean allocated = (entry & Qcow2L2Entry.COMPRESSED) != 0
                            || (entry & Qcow2L2Entry.OFFSET_MASK) != 0
                            || (g.externalData() && (entry & Qcow2L2Entry.COPIED) != 0);
                    if (!hasBacking && !allocated && !full) {
                        continue;
                    }
                    long newEntry;
                    long newBitmap = 0;
                    if (full) {
                        newEntry = 0;
                    } else if (g.extendedL2()) {
                        newEntry = 0;
                        newBitmap = Qcow2Writes.ALL_SUBCLUSTERS << 32;
                    } else {
                        newEntry = version >= 3 ? Qcow2L2Entry.ZERO : 0;
                    }
                    if (newEntry == entry && newBitmap == bitmap) {
                        continue;
                    }
                    map.set(slot, newEntry, newBitmap);
                    if (allocated) {
                        freed.add(entry);
                    }
                }
                releaseFreed(freed);
                map.trim();
            } finally {
                meta.unlock();
            }
        } finally {
            if (!held) {
                clusters.release(first, last);
            }
        }
    }

    /** Whether the L2 table of {@code guest} belongs to this image alone (COPIED in L1), so it may change in place. */
    private boolean isOwned(long guest) {
        return map.l2Owned(guest);
    }
}
