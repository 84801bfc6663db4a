package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.DebugEvent;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Guest writes, zero-writes and discards on a qcow2 image (QEMU 7.2's
 * qcow2_co_pwritev_part, qcow2_co_pwrite_zeroes, qcow2_co_pdiscard).
 *
 * <p>A cluster whose L2 entry has COPIED (refcount 1) is written in place. Any
 * other cluster gets a new host cluster: the bytes the request does not
 * cover are copied (from the old cluster, the backing file, or zeroes, read
 * through the image itself), the data goes to the new cluster, and only then
 * does the L2 entry point at it (copy-on-write data before its L2 entry). With
 * extended L2 only the subclusters a request touches become allocated.
 *
 * <p>Freeing follows QEMU's order: the L2 entry changes and reaches the file
 * first, then the refcount drops.
 *
 * <p>Locking: the guest clusters of a request are held in
 * {@link Qcow2ClusterLocks} for its whole duration; the metadata lock only
 * around cache and refcount changes, never around data I/O.
 */
final class Qcow2Writes {
    /** A zero-write or discard takes at most this many clusters at a time, so one request never holds the image. */
    private static final long CHUNK_CLUSTERS = 1024;
    private static final long ALL_SUBCLUSTERS = 0xffffffffL;
    /** The most one run of fresh clusters takes in one data write. */
    private static final long MAX_RUN_BYTES = 16L << 20;

    /** Reads guest bytes through the image (for copy-on-write). */
    interface GuestReader {
        void read(long offset, ByteBuffer dst) throws BlockException;
    }

    /** Whether guest bytes read as zero (QEMU's is_zero, from block status). */
    interface ZeroProbe {
        boolean readsAsZero(long offset, long length) throws BlockException;
    }

    private final Qcow2Node node;
    private final Qcow2Geometry g;
    private final int version;
    private final BlockNode file;
    private final BlockNode data;
    private final boolean dataFileRaw;
    private final boolean hasBacking;
    private final Qcow2ClusterMap map;
    private final Qcow2Refcounts refcounts;
    private final ReentrantLock meta;
    private final Qcow2ClusterLocks clusters = new Qcow2ClusterLocks();

    Qcow2Writes(Qcow2Node node, Qcow2Geometry g, int version, BlockNode file, BlockNode dataFile,
                boolean dataFileRaw, boolean hasBacking, Qcow2ClusterMap map, Qcow2Refcounts refcounts,
                ReentrantLock meta) {
        this.node = node;
        this.g = g;
        this.version = version;
        this.file = file;
        this.data = dataFile != null ? dataFile : file;
        this.dataFileRaw = dataFileRaw;
        this.hasBacking = hasBacking;
        this.map = map;
        this.refcounts = refcounts;
        this.meta = meta;
    }

    private long clusterOf(long guest) {
        return guest >>> g.clusterBits();
    }

    /** Subclusters {@code first..last} as a bitmap's "allocated" half. */
    private static long subclusterMask(int first, int last) {
        return ((1L << (last - first + 1)) - 1) << first;
    }

    // ---------------------------------------------------------------- write

    void write(long offset, ByteBuffer src) throws BlockException {
        int n = src.remaining();
        long first = clusterOf(offset);
        long last = clusterOf(offset + n - 1);
        clusters.acquire(first, last);
        try {
            long pos = offset;
            ByteBuffer s = src.duplicate();
            while (s.hasRemaining()) {
                if ((pos & (g.clusterSize() - 1)) == 0 && s.remaining() >= 2 * g.clusterSize()) {
                    int done = writeFreshRun(pos, s);
                    if (done > 0) {
                        s.position(s.position() + done);
                        pos += done;
                        continue;
                    }
                }
                long toEnd = g.clusterSize() - (pos & (g.clusterSize() - 1));
                int len = (int) Math.min(toEnd, s.remaining());
                ByteBuffer part = s.duplicate().limit(s.position() + len);
                writeInCluster(pos, part);
                s.position(s.position() + len);
                pos += len;
            }
        } finally {
            clusters.release(first, last);
        }
    }

    /**
     * Whole clusters that hold nothing yet (no host cluster: unallocated or
     * zero) get one contiguous run of new host clusters and one data write,
     * as QEMU allocates a request's clusters together. Returns the bytes
     * written, 0 when fewer than two such clusters start at {@code pos}.
     */
    private int writeFreshRun(long pos, ByteBuffer s) throws BlockException {
        long cs = g.clusterSize();
        int max = (int) Math.min(s.remaining() / cs, MAX_RUN_BYTES / cs);
        int count = 0;
        long host;
        meta.lock();
        try {
            node.checkUsable();
            while (count < max) {
                long entry = map.slotForWrite(pos + count * cs).entry();
                if ((entry & Qcow2L2Entry.COMPRESSED) != 0 || (entry & Qcow2L2Entry.OFFSET_MASK) != 0
                        || (g.externalData() && (entry & Qcow2L2Entry.COPIED) != 0)) {
                    break;
                }
                count++;
            }
            map.trim();
            if (count < 2) {
                return 0;
            }
            host = g.externalData() ? pos : refcounts.allocate(count, "data cluster");
        } finally {
            meta.unlock();
        }
        int bytes = (int) (count * cs);
        try {
            file.debugEvent(DebugEvent.WRITE_AIO);
            writeData(host, s.duplicate().limit(s.position() + bytes));
        } catch (BlockException | RuntimeException e) {
            if (!g.externalData()) {
                meta.lock();
                try {
                    refcounts.free(host, bytes);
                } finally {
                    meta.unlock();
                }
            }
            throw e;
        }
        meta.lock();
        try {
            for (int i = 0; i < count; i++) {
                Qcow2ClusterMap.Slot slot = map.slotForWrite(pos + i * cs);
                map.set(slot, (host + i * cs) | Qcow2L2Entry.COPIED, g.extendedL2() ? ALL_SUBCLUSTERS : 0);
            }
            map.trim();
        } finally {
            meta.unlock();
        }
        return bytes;
    }

    private void writeInCluster(long pos, ByteBuffer src) throws BlockException {
        long cs = g.clusterSize();
        int inCluster = (int) (pos & (cs - 1));
        long clusterGuest = pos - inCluster;
        int len = src.remaining();
        int scBits = g.subclusterBits();
        int scFirst = inCluster >>> scBits;
        int scLast = (inCluster + len - 1) >>> scBits;
        long touched = g.extendedL2() ? subclusterMask(scFirst, scLast) : 0;
        long entry;
        long bitmap;
        meta.lock();
        try {
            node.checkUsable();
            Qcow2ClusterMap.Slot slot = map.slotForWrite(clusterGuest);
            entry = slot.entry();
            bitmap = slot.bitmap(g);
            map.trim();
        } finally {
            meta.unlock();
        }
        boolean compressed = (entry & Qcow2L2Entry.COMPRESSED) != 0;
        long host = entry & Qcow2L2Entry.OFFSET_MASK;
        boolean hasHost = !compressed
                && (host != 0 || (g.externalData() && (entry & Qcow2L2Entry.COPIED) != 0));
        if (hasHost && (entry & Qcow2L2Entry.COPIED) != 0) {
            writeInPlace(clusterGuest, host, entry, bitmap, inCluster, src, touched, scFirst, scLast);
            return;
        }

        int spanStart = 0;
        int spanEnd = (int) cs;
        long newBitmap = 0;
        if (g.extendedL2()) {
            if (compressed) {
                newBitmap = ALL_SUBCLUSTERS;
            } else {
                newBitmap = (bitmap | touched) & ~(touched << 32);
                if (!hasHost) {
                    spanStart = scFirst << scBits;
                    spanEnd = (scLast + 1) << scBits;
                }
            }
        }
        long newHost;
        if (g.externalData()) {
            // QEMU keeps an external data file's clusters at their guest offsets, and counts no references to them.
            newHost = clusterGuest;
        } else {
            meta.lock();
            try {
                newHost = refcounts.allocate(1, "data cluster");
            } finally {
                meta.unlock();
            }
        }
        try {
            if (!hasHost && !compressed && !hasBacking && spanEnd - spanStart > len) {
                // The copied bytes would all be zeroes: zero the span in the file (QEMU's handle_alloc_space,
                // a cheap fallocate where the file can) and write only the data.
                data.writeZeroes(newHost + spanStart, spanEnd - spanStart, 0);
                node.dataGrew(newHost + spanEnd);
                spanStart = inCluster;
                spanEnd = inCluster + len;
            }
            ByteBuffer buf = cowBuffer(clusterGuest, spanStart, spanEnd, inCluster, src);
            file.debugEvent(spanEnd - spanStart == len ? DebugEvent.WRITE_AIO : DebugEvent.COW_WRITE);
            writeData(newHost + spanStart, buf);
        } catch (BlockException | RuntimeException e) {
            if (!g.externalData()) {
                meta.lock();
                try {
                    refcounts.free(newHost, cs);
                } finally {
                    meta.unlock();
                }
            }
            throw e;
        }
        meta.lock();
        try {
            Qcow2ClusterMap.Slot slot = map.slotForWrite(clusterGuest);
            map.set(slot, newHost | Qcow2L2Entry.COPIED, newBitmap);
            if (hasHost || compressed) {
                // The old cluster was shared (or compressed): the new entry reaches the file before its count drops.
                map.writeDirty();
                freeAny(entry);
            }
            map.trim();
        } finally {
            meta.unlock();
        }
    }

    // ---------------------------------------------------------------- compressed writes

    /**
     * QEMU's qcow2_co_pwritev_compressed_part: whole clusters at cluster
     * boundaries (the image's last, partial cluster too), each into a cluster
     * that holds nothing yet. A cluster that does not get smaller is written
     * uncompressed, as QEMU does.
     */
    void writeCompressed(long offset, ByteBuffer src, int compressionType) throws BlockException {
        if (g.externalData()) {
            throw new BlockException(Errno.ENOTSUP, "Compressed writes are not supported in an image with an"
                    + " external data file");
        }
        long cs = g.clusterSize();
        int n = src.remaining();
        if ((offset & (cs - 1)) != 0) {
            throw new BlockException.BadRequest(Errno.EINVAL, "Compressed writes must start at a cluster boundary"
                    + " (offset " + offset + ", cluster size " + cs + ")");
        }
        if ((n & (cs - 1)) != 0 && offset + n != node.length()) {
            throw new BlockException.BadRequest(Errno.EINVAL, "Compressed writes must be whole clusters"
                    + " (length " + n + ", cluster size " + cs + ") or end at the end of the image");
        }
        ByteBuffer s = src.duplicate();
        for (long pos = offset; s.hasRemaining(); ) {
            int len = (int) Math.min(cs, s.remaining());
            ByteBuffer part = s.duplicate().limit(s.position() + len);
            long c = clusterOf(pos);
            clusters.acquire(c, c);
            try {
                writeCompressedCluster(pos, part, compressionType);
            } finally {
                clusters.release(c, c);
            }
            s.position(s.position() + len);
            pos += len;
        }
    }

    private void writeCompressedCluster(long pos, ByteBuffer part, int compressionType) throws BlockException {
        byte[] cluster = new byte[(int) g.clusterSize()];
        part.duplicate().get(cluster, 0, part.remaining());
        byte[] z = Qcow2Compression.compress(compressionType, cluster);
        if (z == null) {
            writeInCluster(pos, part);
            return;
        }
        long host;
        meta.lock();
        try {
            node.checkUsable();
            Qcow2ClusterMap.Slot slot = map.slotForWrite(pos);
            if ((slot.entry() & Qcow2L2Entry.OFFSET_MASK) != 0 || (slot.entry() & Qcow2L2Entry.COMPRESSED) != 0) {
                // QEMU: compression cannot overwrite anything.
                throw new BlockException(Errno.EIO, "Cannot write a compressed cluster at guest offset "
                        + Qcow2ClusterMap.hex(pos) + ": the cluster is already allocated");
            }
            host = refcounts.allocateBytes(z.length);
        } finally {
            meta.unlock();
        }
        file.debugEvent(DebugEvent.WRITE_COMPRESSED);
        node.compressedWritten();
        data.write(host, ByteBuffer.wrap(z), 0);
        node.dataGrew(host + z.length);
        long sectors = (host + z.length - 1) / 512 - host / 512;
        long entry = host | Qcow2L2Entry.COMPRESSED | (sectors << (62 - (g.clusterBits() - 8)));
        meta.lock();
        try {
            Qcow2ClusterMap.Slot slot = map.slotForWrite(pos);
            file.debugEvent(DebugEvent.L2_UPDATE_COMPRESSED);
            // Compressed clusters never have COPIED; with extended L2 their bitmap is 0.
            map.set(slot, entry, 0);
            map.trim();
        } finally {
            meta.unlock();
        }
    }

    private void writeInPlace(long clusterGuest, long host, long entry, long bitmap, int inCluster, ByteBuffer src,
                              long touched, int scFirst, int scLast) throws BlockException {
        boolean allData = g.extendedL2() ? (bitmap & touched) == touched : (entry & Qcow2L2Entry.ZERO) == 0;
        if (allData) {
            file.debugEvent(DebugEvent.WRITE_AIO);
            writeData(host + inCluster, src.duplicate());
            return;
        }
        // Subclusters (or a cluster) that read as zero or from the backing file become data: fill what is not written.
        int spanStart = g.extendedL2() ? scFirst << g.subclusterBits() : 0;
        int spanEnd = g.extendedL2() ? (scLast + 1) << g.subclusterBits() : (int) g.clusterSize();
        ByteBuffer buf = cowBuffer(clusterGuest, spanStart, spanEnd, inCluster, src);
        file.debugEvent(DebugEvent.COW_WRITE);
        writeData(host + spanStart, buf);
        meta.lock();
        try {
            Qcow2ClusterMap.Slot slot = map.slotForWrite(clusterGuest);
            if (g.extendedL2()) {
                map.set(slot, entry, (bitmap | touched) & ~(touched << 32));
            } else {
                map.set(slot, entry & ~Qcow2L2Entry.ZERO, 0);
            }
            map.trim();
        } finally {
            meta.unlock();
        }
    }

    /**
     * The bytes {@code [spanStart, spanEnd)} of the cluster at {@code clusterGuest}
     * as they will be: what the image reads now, with {@code src} laid over at {@code inCluster}.
     */
    private ByteBuffer cowBuffer(long clusterGuest, int spanStart, int spanEnd, int inCluster, ByteBuffer src)
            throws BlockException {
        int len = src.remaining();
        if (spanStart == inCluster && spanEnd == inCluster + len) {
            return src.duplicate();
        }
        ByteBuffer buf = ByteBuffer.allocate(spanEnd - spanStart);
        long size = node.length();
        long readable = Math.min(spanEnd - spanStart, size - (clusterGuest + spanStart));
        if (readable > 0) {
            file.debugEvent(DebugEvent.COW_READ);
            node.readGuest(clusterGuest + spanStart, buf.duplicate().limit((int) readable));
        }
        buf.put(inCluster - spanStart, src, src.position(), len);
        return buf;
    }

    private void writeData(long host, ByteBuffer buf) throws BlockException {
        int n = buf.remaining();
        data.write(host, buf, 0);
        node.dataGrew(host + n);
    }

    /** Drops one reference to what an old L2 entry pointed at (QEMU's qcow2_free_any_cluster). */
    private void freeAny(long entry) throws BlockException {
        if ((entry & Qcow2L2Entry.COMPRESSED) != 0) {
            long at = Qcow2L2Entry.compressedOffset(entry, g.clusterBits());
            int size = Qcow2L2Entry.compressedSize(entry, g.clusterBits());
            refcounts.free(at, size);
            return;
        }
        long host = entry & Qcow2L2Entry.OFFSET_MASK;
        if (host != 0 && !g.externalData()) {
            refcounts.free(host, g.clusterSize());
        }
    }

    // ---------------------------------------------------------------- zero writes

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
        long c = clusterOf(start);
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
            write(pos, zeroes.clear().limit(n));
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
                long chunkEnd = Math.min(offset + length, (clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits());
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
            long chunkEnd = Math.min(end, ((clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits()));
            zeroChunk(chunkStart, chunkEnd, mayUnmap, flags, false);
            chunkStart = chunkEnd;
        }
    }

    /** {@code held}: the caller holds the clusters already (and the range is one subcluster, never compressed). */
    private void zeroChunk(long start, long end, boolean mayUnmap, int flags, boolean held) throws BlockException {
        long first = clusterOf(start);
        long last = clusterOf(end - 1);
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
                            newBitmap = ALL_SUBCLUSTERS << 32;
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
                        long mask = subclusterMask(scFirst, scLast);
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
            freeAny(entry);
            long host = entry & Qcow2L2Entry.OFFSET_MASK;
            if ((entry & Qcow2L2Entry.COMPRESSED) != 0 || dataFileRaw) {
                continue;
            }
            if (g.externalData() || (host != 0 && refcounts.refcount(host) == 0)) {
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
            long chunkEnd = Math.min(end, (clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits());
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
            long chunkEnd = Math.min(end, (clusterOf(chunkStart) + CHUNK_CLUSTERS) << g.clusterBits());
            discardChunk(chunkStart, chunkEnd, true, false);
            chunkStart = chunkEnd;
        }
    }

    private void discardChunk(long start, long end, boolean full, boolean held) throws BlockException {
        long first = clusterOf(start);
        long last = clusterOf(end - 1);
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
                        newBitmap = ALL_SUBCLUSTERS << 32;
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
