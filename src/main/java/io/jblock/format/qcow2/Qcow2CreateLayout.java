package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The metadata of a new qcow2 image, laid out cluster by cluster where
 * QEMU 7.2 puts it. QEMU creates an image by writing a header and a
 * one-cluster refcount table, then opening it and growing it through its
 * ordinary allocator; the places of the L1 table, of new refcount blocks
 * and tables, and of preallocated L2 tables and data follow from that
 * allocator's rules, which are modelled here so that the file is the same
 * byte for byte:
 * <ul>
 *   <li>clusters are taken first-fit from a free index that only moves
 *       back when a refcount drops to zero;</li>
 *   <li>a cluster needing a refcount block that does not exist gets one at
 *       the free index, hooked into the table, and the allocation starts
 *       over (EAGAIN), its partial increments undone;</li>
 *   <li>when the table is full, new self-describing refcount blocks and a
 *       larger table go after everything covered so far, and the old table
 *       is freed;</li>
 *   <li>preallocated data and L2 tables are allocated one L2 table at a
 *       time, each L2 table as its first guest cluster is reached.</li>
 * </ul>
 *
 * <p>Writes reach the file in QEMU's order where a later allocation may
 * reuse the space (refcount tables, the L1 table); tables that only grow
 * (refcount blocks, L2 tables) are written whole at {@link #finish}, with
 * what QEMU's caches write last.
 */
final class Qcow2CreateLayout {
    /** QEMU's BDRV_REQUEST_MAX_BYTES: the most one request allocates. */
    private static final long REQUEST_MAX_BYTES = 0x7fff_fe00L;
    /** QEMU's QCOW_MAX_L1_SIZE: 32 MiB of L1 entries. */
    private static final long MAX_L1_BYTES = 0x0200_0000L;
    /** QEMU's QCOW_MAX_REFTABLE_SIZE: 8 MiB of refcount table entries. */
    private static final long MAX_REFTABLE_ENTRIES = 0x0080_0000L / 8;
    static final long OFLAG_COPIED = 1L << 63;

    /** Thrown inside the allocator when QEMU's would return -EAGAIN: the caller searches again. */
    private static final class Again extends Exception {
        Again() {
            super(null, null, false, false);
        }
    }

    private final BlockNode file;
    private final int clusterBits;
    private final long clusterSize;
    private final int refcountOrder;
    /** log2 of the entries in one refcount block. */
    private final int refblockBits;
    private final long refblockEntries;
    private final long maxRefcount;
    private final boolean extendedL2;
    private final int l2EntryBytes;
    /** Guest clusters per L2 table (QEMU's l2_slice_size with its default cache entry size, a cluster). */
    private final long l2Entries;

    private long[] refcountTable;
    private long refcountTableOffset;
    private long maxRefcountTableIndex;
    /** Refcount blocks by offset, in the order QEMU made them. */
    private final Map<Long, long[]> refblocks = new LinkedHashMap<>();
    private long freeClusterIndex;

    private long[] l1 = new long[0];
    private long l1Offset;
    /** L2 tables by offset: per guest cluster, the entry and (extended L2) the bitmap. */
    private final TreeMap<Long, long[]> l2Tables = new TreeMap<>();

    Qcow2CreateLayout(BlockNode file, int clusterBits, int refcountOrder, boolean extendedL2) {
        this.file = file;
        this.clusterBits = clusterBits;
        this.clusterSize = 1L << clusterBits;
        this.refcountOrder = refcountOrder;
        this.refblockBits = clusterBits + 3 - refcountOrder;
        this.refblockEntries = 1L << refblockBits;
        this.maxRefcount = refcountOrder == 6 ? Long.MAX_VALUE : (1L << (1 << refcountOrder)) - 1;
        this.extendedL2 = extendedL2;
        this.l2EntryBytes = extendedL2 ? 16 : 8;
        this.l2Entries = clusterSize / l2EntryBytes;
    }

    long clusterSize() {
        return clusterSize;
    }

    long refcountTableOffset() {
        return refcountTableOffset;
    }

    int refcountTableClusters() {
        return (int) (refcountTable.length * 8L / clusterSize);
    }

    long l1Offset() {
        return l1Offset;
    }

    int l1Size() {
        return l1.length;
    }

    /**
     * The start of every image: a refcount table in cluster 1 naming an
     * empty refcount block in cluster 2 (written now, as QEMU does before it
     * first opens the image), then clusters 0 to 2 counted.
     */
    void start() throws BlockException {
        refcountTable = new long[(int) (clusterSize / 8)];
        refcountTableOffset = clusterSize;
        refcountTable[0] = 2 * clusterSize;
        maxRefcountTableIndex = 0;
        refblocks.put(2 * clusterSize, new long[(int) refblockEntries]);
        ByteBuffer b = ByteBuffer.allocate((int) (2 * clusterSize));
        b.putLong(0, 2 * clusterSize);
        file.write(clusterSize, b, 0);
        if (allocate(3 * clusterSize) != 0) {
            throw new IllegalStateException("the first cluster of an empty image is in use");
        }
    }

    // ------------------------------------------------------------------ refcounts

    private long refcount(long clusterIndex) {
        long tableIndex = clusterIndex >>> refblockBits;
        if (tableIndex >= refcountTable.length || refcountTable[(int) tableIndex] == 0) {
            return 0;
        }
        return refblocks.get(refcountTable[(int) tableIndex])[(int) (clusterIndex & (refblockEntries - 1))];
    }

    /** QEMU's alloc_clusters_noref: the first run of free clusters from the free index, not yet counted. */
    private long findFree(long bytes) throws BlockException {
        long n = clustersOf(bytes);
        while (true) {
            boolean ok = true;
            for (long i = 0; i < n; i++) {
                long next = freeClusterIndex++;
                if (refcount(next) != 0) {
                    ok = false;
                    break;
                }
            }
            if (ok) {
                if (freeClusterIndex - 1 > (Long.MAX_VALUE >>> clusterBits)) {
                    throw new BlockException(Errno.EFBIG, "File too large");
                }
                return (freeClusterIndex - n) << clusterBits;
            }
        }
    }

    /** QEMU's qcow2_alloc_clusters: finds and counts {@code bytes} of clusters, searching again after EAGAIN. */
    long allocate(long bytes) throws BlockException {
        while (true) {
            long offset = findFree(bytes);
            try {
                updateRefcount(offset, bytes, 1);
                return offset;
            } catch (Again again) {
                // The new refcount metadata may sit where the search had found room.
            }
        }
    }

    /** QEMU's qcow2_alloc_clusters_at: counts up to {@code n} clusters at {@code offset}, as many as are free. */
    long allocateAt(long offset, long n) throws BlockException {
        if (n == 0) {
            return 0;
        }
        while (true) {
            long index = offset >>> clusterBits;
            long free = 0;
            while (free < n && refcount(index + free) == 0) {
                free++;
            }
            try {
                updateRefcount(offset, free << clusterBits, 1);
                return free;
            } catch (Again again) {
                // Count again: a new refcount block may have taken one of them.
            }
        }
    }

    private void updateRefcount(long offset, long length, int addend) throws BlockException, Again {
        if (length == 0) {
            return;
        }
        long start = offset & ~(clusterSize - 1);
        long last = (offset + length - 1) & ~(clusterSize - 1);
        long oldTableIndex = -1;
        long[] block = null;
        for (long cluster = start; cluster <= last; cluster += clusterSize) {
            long index = cluster >>> clusterBits;
            long tableIndex = index >>> refblockBits;
            if (tableIndex != oldTableIndex) {
                try {
                    block = refcountBlockFor(index);
                } catch (Again again) {
                    // The search starts over at the same clusters: they may still be free.
                    freeClusterIndex = Math.min(freeClusterIndex, start >>> clusterBits);
                    undo(offset, cluster - offset, addend);
                    throw again;
                }
            }
            oldTableIndex = tableIndex;
            int i = (int) (index & (refblockEntries - 1));
            long count = block[i] + addend;
            if (count < 0 || Long.compareUnsigned(count, maxRefcount) > 0) {
                undo(offset, cluster - offset, addend);
                throw new BlockException(Errno.EINVAL, "Invalid argument");
            }
            if (count == 0 && index < freeClusterIndex) {
                freeClusterIndex = index;
            }
            block[i] = count;
        }
    }

    private void undo(long offset, long length, int addend) throws BlockException {
        try {
            updateRefcount(offset, length, -addend);
        } catch (Again ignored) {
            // Undoing never needs a new refcount block: the ones it touches were just used.
        }
    }

    private void free(long offset, long length) throws BlockException {
        undo(offset, length, 1);
    }

    /** QEMU's alloc_refcount_block: the block counting {@code clusterIndex}, made (and EAGAIN) if missing. */
    private long[] refcountBlockFor(long clusterIndex) throws BlockException, Again {
        long tableIndex = clusterIndex >>> refblockBits;
        if (tableIndex < refcountTable.length && refcountTable[(int) tableIndex] != 0) {
            return refblocks.get(refcountTable[(int) tableIndex]);
        }
        long newBlock = findFree(clusterSize);
        if ((newBlock >>> (clusterBits + refblockBits)) == tableIndex) {
            long[] block = new long[(int) refblockEntries];
            block[(int) ((newBlock >>> clusterBits) & (refblockEntries - 1))] = 1;
            refblocks.put(newBlock, block);
        } else {
            // Counted by another block, which may itself be new: at most two levels deep.
            updateRefcount(newBlock, clusterSize, 1);
            refblocks.put(newBlock, new long[(int) refblockEntries]);
        }
        if (tableIndex < refcountTable.length) {
            refcountTable[(int) tableIndex] = newBlock;
            maxRefcountTableIndex = Math.max(maxRefcountTableIndex, tableIndex);
            throw new Again();
        }
        long blocksUsed = ceilDiv(Math.max(clusterIndex + 1, (newBlock >>> clusterBits) + 1), refblockEntries);
        refcountArea(blocksUsed * refblockEntries * clusterSize, 0, false, (int) tableIndex, newBlock);
        throw new Again();
    }

    /**
     * QEMU's qcow2_refcount_area: from {@code start} (the end of everything
     * so far), new refcount blocks and a new table covering themselves and
     * {@code additional} clusters after them; returns where those may go.
     */
    long refcountArea(long start, long additional, boolean exact, int newIndex, long newBlockOffset)
            throws BlockException {
        long total = refblockCount(start / clusterSize + additional, !exact);
        if (total > MAX_REFTABLE_ENTRIES) {
            throw new BlockException(Errno.EFBIG, "File too large");
        }
        long areaIndex = (start / clusterSize) >>> refblockBits;
        long tableSize = exact ? total : total + ceilDiv(total, 2);
        long perCluster = clusterSize / 8;
        tableSize = ceilDiv(tableSize, perCluster) * perCluster;
        if (tableSize > MAX_REFTABLE_ENTRIES) {
            throw new BlockException(Errno.EFBIG, "File too large");
        }
        long tableClusters = tableSize * 8 / clusterSize;
        long[] table = new long[(int) tableSize];
        if (tableSize > maxRefcountTableIndex) {
            System.arraycopy(refcountTable, 0, table, 0, (int) Math.min(maxRefcountTableIndex + 1,
                    refcountTable.length));
        } else {
            System.arraycopy(refcountTable, 0, table, 0, (int) tableSize);
        }
        if (newBlockOffset != 0) {
            table[newIndex] = newBlockOffset;
        }
        long missing = 0;
        for (long i = areaIndex; i < total; i++) {
            if (table[(int) i] == 0) {
                missing++;
            }
        }
        long tableOffset = start + missing * clusterSize;
        long end = tableOffset + tableClusters * clusterSize;
        long blockOffset = start;
        for (long i = areaIndex; i < total; i++) {
            long[] block;
            if (table[(int) i] != 0) {
                block = refblocks.get(table[(int) i]);
            } else {
                block = new long[(int) refblockEntries];
                refblocks.put(blockOffset, block);
                table[(int) i] = blockOffset;
                blockOffset += clusterSize;
            }
            long firstCovered = i * refblockEntries * clusterSize;
            if (firstCovered < end) {
                long j = firstCovered < start ? (start - firstCovered) / clusterSize : 0;
                long endIndex = Math.min((end - firstCovered) / clusterSize, refblockEntries);
                for (; j < endIndex; j++) {
                    block[(int) j] = 1;
                }
            }
        }
        // The old table keeps what it had; the new one is written whole.
        writeTable(refcountTableOffset, refcountTable);
        long oldOffset = refcountTableOffset;
        long oldSize = refcountTable.length;
        refcountTable = table;
        refcountTableOffset = tableOffset;
        writeTable(tableOffset, table);
        maxRefcountTableIndex = 0;
        for (int i = table.length - 1; i >= 0; i--) {
            if (table[i] != 0) {
                maxRefcountTableIndex = i;
                break;
            }
        }
        free(oldOffset, oldSize * 8);
        return end;
    }

    /** QEMU's qcow2_refcount_metadata_size, the refcount block count only. */
    private long refblockCount(long clusters, boolean generous) {
        return refcountMetadata(clusters, clusterSize, refcountOrder, generous)[0];
    }

    /**
     * The refcount blocks and table clusters that count {@code clusters}
     * and themselves: the fixed point QEMU finds, optionally with room for
     * half as many table clusters again.
     *
     * @return {blocks, table clusters}
     */
    static long[] refcountMetadata(long clusters, long clusterSize, int refcountOrder, boolean generous) {
        long blocksPerTableCluster = clusterSize / 8;
        long refcountsPerBlock = clusterSize * 8 / (1L << refcountOrder);
        long table = 0;
        long blocks = 0;
        long n = 0;
        long last;
        do {
            last = n;
            blocks = ceilDiv(clusters + table + blocks, refcountsPerBlock);
            table = ceilDiv(blocks, blocksPerTableCluster);
            n = clusters + blocks + table;
            if (n == last && generous) {
                clusters += ceilDiv(table, 2);
                n = 0;
                generous = false;
            }
        } while (n != last);
        return new long[] {blocks, table};
    }

    // ------------------------------------------------------------------ L1 and L2

    /** QEMU's size_to_l1: L1 entries for a virtual size. */
    long l1EntriesFor(long size) {
        int shift = clusterBits + (clusterBits - (extendedL2 ? 4 : 3));
        return (size + (1L << shift) - 1) >>> shift;
    }

    /** QEMU's qcow2_grow_l1_table with exact size, from an empty table: returns the header bytes to update. */
    void growL1(long entries) throws BlockException {
        if (entries <= l1.length) {
            return;
        }
        if (entries > MAX_L1_BYTES / 8) {
            throw new BlockException(Errno.EFBIG, "Failed to grow the L1 table: File too large");
        }
        long[] table = Arrays.copyOf(l1, (int) entries);
        long offset = allocate(entries * 8);
        l1 = table;
        l1Offset = offset;
        writeL1();
    }

    private void writeL1() throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(l1.length * 8);
        b.asLongBuffer().put(l1);
        file.write(l1Offset, b, 0);
    }

    /** QEMU's get_cluster_table: the L2 table for a guest offset, allocated (l2_allocate) if missing. */
    private long[] l2TableFor(long guestOffset) throws BlockException {
        int l1Index = (int) (guestOffset >>> (clusterBits + Long.numberOfTrailingZeros(l2Entries)));
        if ((l1[l1Index] & OFLAG_COPIED) == 0) {
            long offset = allocate(clusterSize);
            l2Tables.put(offset, new long[(int) (l2Entries * (extendedL2 ? 2 : 1))]);
            l1[l1Index] = offset | OFLAG_COPIED;
        }
        return l2Tables.get(l1[l1Index] & ~OFLAG_COPIED);
    }

    private long l2Index(long guestOffset) {
        return (guestOffset >>> clusterBits) & (l2Entries - 1);
    }

    private void link(long guestOffset, long hostOffset, long clusters) throws BlockException {
        long[] l2 = l2TableFor(guestOffset);
        long index = l2Index(guestOffset);
        for (long i = 0; i < clusters; i++) {
            l2[(int) ((index + i) * (extendedL2 ? 2 : 1))] = (hostOffset + (i << clusterBits)) | OFLAG_COPIED;
        }
    }

    /**
     * preallocation=metadata (QEMU's preallocate_co from 0): every guest
     * cluster mapped, one L2 table's worth at a time, the data clusters
     * allocated but never written; the file then reaches the end of the
     * last one.
     */
    void preallocateMetadata(long size) throws BlockException {
        long offset = 0;
        long bytes = size;
        long hostOffset = 0;
        long done = 0;
        long maxChunk = (Integer.MAX_VALUE / clusterSize) * clusterSize;
        while (bytes > 0) {
            long want = Math.min(bytes, maxChunk);
            long[] r = allocateHost(offset, want);
            hostOffset = r[0];
            done = r[1];
            bytes -= done;
            offset += done;
        }
        if (size > 0) {
            writeTailCow(file, hostOffset + ((done - 1) & ~(clusterSize - 1)), size);
        }
        if (size > 0 && hostOffset + done > file.length()) {
            file.truncate(hostOffset + done, false, Prealloc.OFF);
        }
    }

    /**
     * QEMU maps the last, partial cluster of a preallocated image as a write
     * would, so it copies on write the rest of that (sub)cluster: zeroes are
     * written from the end of the image to the end of the subcluster (the
     * cluster without extended L2), at the host cluster {@code host}.
     */
    private void writeTailCow(BlockNode target, long host, long size) throws BlockException {
        long subcluster = extendedL2 ? clusterSize / 32 : clusterSize;
        long from = size & (clusterSize - 1);
        if ((size & (subcluster - 1)) == 0) {
            return;
        }
        long to = (from + subcluster - 1) & ~(subcluster - 1);
        target.write(host + from, ByteBuffer.allocate((int) (to - from)), 0);
    }

    /**
     * QEMU's qcow2_alloc_host_offset on unallocated clusters: allocates
     * runs, each within one L2 table, continuing contiguously while the
     * next run can follow the last one in the file.
     *
     * @return {host offset of the first cluster, bytes mapped}
     */
    private long[] allocateHost(long offset, long bytes) throws BlockException {
        long start = offset;
        long remaining = bytes;
        long expected = -1;
        long host = -1;
        while (remaining > 0) {
            // handle_copied first: it reaches (and so allocates) the L2 table.
            l2TableFor(start);
            long n = Math.min(clustersOf(remaining), l2Entries - l2Index(start));
            n = Math.min(n, REQUEST_MAX_BYTES >>> clusterBits);
            long at;
            if (expected < 0) {
                at = allocate(n << clusterBits);
            } else {
                n = allocateAt(expected, n);
                if (n == 0) {
                    break;
                }
                at = expected;
            }
            link(start, at, n);
            long cur = Math.min(remaining, n << clusterBits);
            if (host < 0) {
                host = at;
            }
            expected = at + (n << clusterBits);
            start += cur;
            remaining -= cur;
        }
        return new long[] {host, bytes - remaining};
    }

    /**
     * Preallocation with an external data file: guest clusters map 1:1 onto
     * the data file, which is not refcounted, so only the L2 tables are
     * allocated here, in guest order; the data file then grows to the size
     * (preallocated as asked, for falloc and full).
     */
    void preallocateExternal(long size, BlockNode data, Prealloc mode) throws BlockException {
        long guest = 0;
        long left = clustersOf(size);
        while (left > 0) {
            long n = Math.min(left, l2Entries - l2Index(guest));
            link(guest, guest, n);
            guest += n << clusterBits;
            left -= n;
        }
        if (size > 0) {
            writeTailCow(data, (size - 1) & ~(clusterSize - 1), size);
        }
        long length = data.length();
        if (size > length) {
            data.truncate(size, false, mode == Prealloc.METADATA ? Prealloc.OFF : mode);
            if (length == 0 && mode != Prealloc.FULL) {
                Qcow2Creator.allocateFirstBlock(data, size);
            }
        }
    }

    /**
     * preallocation=falloc/full (QEMU's qcow2_co_truncate from 0): refcount
     * structures for the whole area after the current end, the data
     * clusters after them, the file grown over those with the protocol's
     * preallocation, then the L2 tables, wherever they fit.
     */
    void preallocateData(long size, Prealloc mode) throws BlockException {
        long oldFileSize = file.length();
        long lastUsed = -1;
        for (long i = clustersOf(oldFileSize) - 1; i >= 0; i--) {
            if (refcount(i) > 0) {
                lastUsed = i;
                break;
            }
        }
        oldFileSize = lastUsed >= 0 ? (lastUsed + 1) * clusterSize : clustersOf(oldFileSize) * clusterSize;
        long dataClusters = clustersOf(size);
        long l2TablesNeeded = ceilDiv(dataClusters, l2Entries) + 1;
        long allocationStart = refcountArea(oldFileSize, dataClusters + l2TablesNeeded, true, 0, 0);
        long got = allocateAt(allocationStart, dataClusters);
        if (got != dataClusters) {
            throw new IllegalStateException("the preallocated area was not free");
        }
        // The refcount blocks reach the file before it grows, as QEMU's cache flush in refcount_area.
        flushRefblocks();
        try {
            file.truncate(allocationStart + dataClusters * clusterSize, false, mode);
        } catch (BlockException e) {
            throw new BlockException(e.errno(), "Failed to resize underlying file: " + e.getMessage(), e);
        }
        long host = allocationStart;
        long guest = 0;
        long left = dataClusters;
        while (left > 0) {
            long n = Math.min(left, l2Entries - l2Index(guest));
            link(guest, host, n);
            guest += n * clusterSize;
            host += n * clusterSize;
            left -= n;
        }
    }

    // ------------------------------------------------------------------ writing

    /** Writes what QEMU's caches hold at close: refcount blocks, L2 tables, the L1 and refcount tables. */
    void finish() throws BlockException {
        flushRefblocks();
        for (Map.Entry<Long, long[]> e : l2Tables.entrySet()) {
            ByteBuffer b = ByteBuffer.allocate((int) clusterSize);
            b.asLongBuffer().put(e.getValue());
            file.write(e.getKey(), b, 0);
        }
        if (l1.length > 0) {
            writeL1();
        }
        writeTable(refcountTableOffset, refcountTable);
    }

    private void flushRefblocks() throws BlockException {
        for (Map.Entry<Long, long[]> e : refblocks.entrySet()) {
            file.write(e.getKey(), ByteBuffer.wrap(encodeRefblock(e.getValue())), 0);
        }
    }

    private void writeTable(long offset, long[] table) throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(table.length * 8);
        b.asLongBuffer().put(table);
        file.write(offset, b, 0);
    }

    /**
     * A refcount block as stored: entries narrower than a byte are packed
     * from the least significant bit of each byte, wider ones big-endian.
     */
    private byte[] encodeRefblock(long[] counts) {
        byte[] out = new byte[(int) clusterSize];
        int bits = 1 << refcountOrder;
        if (bits < 8) {
            int perByte = 8 / bits;
            for (int i = 0; i < counts.length; i++) {
                out[i / perByte] |= (byte) (counts[i] << (bits * (i % perByte)));
            }
            return out;
        }
        int bytes = bits / 8;
        for (int i = 0; i < counts.length; i++) {
            long v = counts[i];
            for (int k = bytes - 1; k >= 0; k--) {
                out[i * bytes + k] = (byte) v;
                v >>>= 8;
            }
        }
        return out;
    }

    private long clustersOf(long bytes) {
        return (bytes + clusterSize - 1) >>> clusterBits;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
