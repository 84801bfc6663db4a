package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.DebugEvent;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Guest writes and compressed writes on a qcow2 image (QEMU 7.2's
 * qcow2_co_pwritev_part and qcow2_co_pwritev_compressed_part); zero-writes
 * and discards are {@link Qcow2ZeroWrites}.
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
    /** An extended L2 bitmap's "allocated" half with every subcluster set. */
    static final long ALL_SUBCLUSTERS = 0xffffffffL;
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
    private final Qcow2ClusterLocks clusters;

    Qcow2Writes(Qcow2Node node, Qcow2Geometry g, int version, BlockNode file, BlockNode dataFile,
                boolean dataFileRaw, boolean hasBacking, Qcow2ClusterMap map, Qcow2Refcounts refcounts,
                ReentrantLock meta, Qcow2ClusterLocks clusters) {
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
        this.clusters = clusters;
    }

    long clusterOf(long guest) {
        return guest >>> g.clusterBits();
    }

    /** Subclusters {@code first..last} as a bitmap's "allocated" half. */
    static long subclusterMask(int first, int last) {
        return ((1L << (last - first + 1)) - 1) << first;
    }

    // ---------------------------------------------------------------- write

    void write(long offset, ByteBuffer src) throws BlockException {
        int n = src.remaining();
        long first = clusterOf(offset);
        long last = clusterOf(offset + n - 1);
        clusters.acquire(first, last);
        try {
            if (first == last && n > 0) {
                // One cluster (most requests): writeInCluster may hand src itself to the data file, whose
                // write moves its position only once done, as this node's own write does.
                writeInCluster(offset, src);
                return;
            }
            long pos = offset;
            ByteBuffer s = src.duplicate();
            while (s.hasRemaining()) {
                int done = writeRun(pos, s);
                if (done == 0) {
                    long toEnd = g.clusterSize() - (pos & (g.clusterSize() - 1));
                    done = (int) Math.min(toEnd, s.remaining());
                    writeInCluster(pos, s.duplicate().limit(s.position() + done));
                }
                s.position(s.position() + done);
                pos += done;
            }
        } finally {
            clusters.release(first, last);
        }
    }

    /**
     * A run of clusters from {@code pos} in one L2 slice, found in one pass
     * over the slice under one metadata lock, as QEMU's qcow2_co_pwritev_part
     * takes a run of clusters per step:
     * <ul>
     * <li>clusters this image owns (COPIED) that hold data and sit one after
     *     the other in the file: one data write, no metadata change;</li>
     * <li>two or more whole clusters that hold nothing yet (no host cluster:
     *     unallocated or zero): one run of new host clusters, one data write,
     *     then their L2 entries set together (one slice dirtied).</li>
     * </ul>
     * Returns the bytes written, 0 when neither starts at {@code pos} (the
     * caller then writes one cluster with copy-on-write as needed).
     */
    private int writeRun(long pos, ByteBuffer s) throws BlockException {
        long cs = g.clusterSize();
        int inCluster = (int) (pos & (cs - 1));
        int remaining = s.remaining();
        int touched = (int) Math.min((inCluster + (long) remaining + cs - 1) / cs, MAX_RUN_BYTES / cs);
        int max = Math.min(touched, map.clustersToSliceEnd(pos));
        int step = g.l2EntryWords();
        int count = 0;
        long host;
        boolean inPlace;
        meta.lock();
        try {
            node.checkUsable();
            long[] words = map.sliceForWrite(pos).words;
            int w = map.wordIndex(pos);
            host = ownedDataHost(words, w);
            inPlace = host >= 0;
            if (inPlace) {
                while (count < max && ownedDataHost(words, w + count * step) == host + count * cs) {
                    count++;
                }
            } else if (inCluster == 0) {
                // At most one L2 slice, as QEMU's handle_alloc: with small clusters a longer run would need many
                // new refcount blocks, each of which breaks the run and restarts the search.
                long whole = Math.min(max, remaining / cs);
                while (count < whole && holdsNothing(words[w + count * step])) {
                    count++;
                }
                if (count >= 2) {
                    host = g.externalData() ? pos : refcounts.allocate(count, "data cluster");
                }
            }
            map.trim();
        } finally {
            meta.unlock();
        }
        if (inPlace) {
            int bytes = (int) Math.min(count * cs - inCluster, remaining);
            file.debugEvent(DebugEvent.WRITE_AIO);
            writeData(host + inCluster, s.duplicate().limit(s.position() + bytes));
            return bytes;
        }
        if (count < 2) {
            return 0;
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
            // The data is in the file: now the entries may point at it (copy-on-write data before its L2 entry).
            map.setRun(pos, count, host, g.extendedL2() ? ALL_SUBCLUSTERS : 0);
            map.trim();
        } finally {
            meta.unlock();
        }
        return bytes;
    }

    /**
     * The host cluster of the entry at {@code words[w]} when a write may go
     * straight into it: owned by this image alone (COPIED), not compressed,
     * and all data (no zero flag; with extended L2 every subcluster
     * allocated). Otherwise -1.
     */
    private long ownedDataHost(long[] words, int w) {
        long entry = words[w];
        if ((entry & Qcow2L2Entry.COPIED) == 0 || (entry & Qcow2L2Entry.COMPRESSED) != 0) {
            return -1;
        }
        long host = entry & Qcow2L2Entry.OFFSET_MASK;
        if (host == 0 && !g.externalData()) {
            return -1;
        }
        if (g.extendedL2()) {
            return (words[w + 1] & ALL_SUBCLUSTERS) == ALL_SUBCLUSTERS ? host : -1;
        }
        return (entry & Qcow2L2Entry.ZERO) == 0 ? host : -1;
    }

    /** Whether a cluster has no host cluster yet (unallocated or zero), so a whole-cluster write allocates one. */
    private boolean holdsNothing(long entry) {
        return (entry & Qcow2L2Entry.COMPRESSED) == 0 && (entry & Qcow2L2Entry.OFFSET_MASK) == 0
                && !(g.externalData() && (entry & Qcow2L2Entry.COPIED) != 0);
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
            Qcow2ClusterMap.Slice slice = map.sliceForWrite(clusterGuest);
            int w = map.wordIndex(clusterGuest);
            entry = slice.words[w];
            bitmap = g.extendedL2() ? slice.words[w + 1] : 0;
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
            map.set(map.sliceForWrite(clusterGuest), map.wordIndex(clusterGuest), newHost | Qcow2L2Entry.COPIED,
                    newBitmap);
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
            writeData(host + inCluster, src);
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
            Qcow2ClusterMap.Slice slice = map.sliceForWrite(clusterGuest);
            int w = map.wordIndex(clusterGuest);
            if (g.extendedL2()) {
                map.set(slice, w, entry, (bitmap | touched) & ~(touched << 32));
            } else {
                map.set(slice, w, entry & ~Qcow2L2Entry.ZERO, 0);
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
            return src;
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
    void freeAny(long entry) throws BlockException {
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
}
