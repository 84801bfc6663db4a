package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.DebugEvent;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reference counts: a refcount table of 64-bit block offsets (bits 9..63),
 * each block one cluster of {@code 2^refcount_order}-bit big-endian counts,
 * one per host cluster; and the allocator of host clusters built on them.
 *
 * <pre>
 * host cluster c:  table index c >> (cluster_bits + 3 - refcount_order)
 *                  block index c &amp; (entries per block - 1)
 * widths below 8 bits pack the lowest-numbered entry in a byte's least significant bits
 * </pre>
 *
 * <p>Blocks are cached (bounded, write-back). A dirty block may reach the
 * file at any time: its changes are either increments (a block written early
 * only leaks) or decrements whose L2 references are already in the file. The
 * other direction is the caller's: {@link #flush()} before any L2 or L1 write
 * that references a newly allocated cluster.
 *
 * <p>Not thread-safe: the image's metadata lock guards every call but
 * {@link #refcount} on a read-only image.
 */
final class Qcow2Refcounts {
    private static final long TABLE_OFFSET_MASK = 0xfffffffffffffe00L;
    /** Header offset of refcount_table_offset (u64), followed by refcount_table_clusters (u32). */
    private static final int HEADER_REFTABLE_FIELDS = 48;
    /** 256 KiB of cached refcount blocks, QEMU's default refcount cache size relation (a quarter of the L2 cache). */
    private static final int CACHE_BYTES = 256 << 10;

    private final BlockNode file;
    private volatile long fileLength;
    private final int clusterBits;
    private final int refcountOrder;
    private final int bits;
    private final int entriesPerBlockBits;
    private final int capacity;
    private long tableOffset;
    private long tableEntries;
    /** The refcount table, read whole at first use (at most 8 MiB, {@link Qcow2Limits#MAX_REFTABLE_BYTES}). */
    private long[] table;
    /**
     * The non-zero block offsets of {@link #table} (masked), sorted, in the
     * first {@link #blockCount} slots, for the overlap check; null until
     * first needed and whenever the table is replaced. Every change of a
     * table entry goes through {@link #blockAdded} or drops it.
     */
    private long[] blockOffsets;
    private int blockCount;
    private final LinkedHashMap<Long, Block> cache = new LinkedHashMap<>(16, 0.75f, true);
    /** No free cluster below this one (QEMU's free_cluster_index). */
    private long freeHint;
    /**
     * No free run of several clusters starts below this one, as far as the
     * last run search saw: a small hole low in the file must not make every
     * later run search scan the whole file again.
     */
    private long runHint;
    /** Where the next compressed cluster may start inside the last one's host cluster; 0: nowhere (QEMU's free_byte_offset). */
    private long freeByteOffset;
    /** Checks a newly allocated range against the image's other metadata before it is used. */
    private OverlapCheck overlapCheck = (offset, length, what) -> { };

    /**
     * Why clusters are freed, for the discard passthrough (QEMU's
     * Qcow2DiscardType): a cluster whose count drops to 0 is discarded in the
     * file when its reason passes. {@code NEVER} (the default of
     * {@link #update}) never does; the others are what the node's
     * pass-discard-* options (and their defaults) let through.
     */
    enum FreeReason { NEVER, ALWAYS, REQUEST, SNAPSHOT, OTHER }

    /** The reasons that discard: QEMU's defaults for an image opened without discard=unmap. */
    private java.util.Set<FreeReason> passthrough = java.util.EnumSet.of(FreeReason.ALWAYS, FreeReason.SNAPSHOT);
    /**
     * Freed byte ranges waiting to be discarded, start to end, merged. They
     * are discarded once the refcount blocks saying so are written (see
     * {@link #flush}), and taken out again when their clusters are allocated
     * before that, so a discard never hits a cluster in use.
     */
    private final java.util.TreeMap<Long, Long> pendingDiscards = new java.util.TreeMap<>();
    /** Past this many ranges, the refcount blocks are written and the ranges discarded at once (bounded memory). */
    private static final int MAX_PENDING_DISCARDS = 4096;

    private static final class Block {
        final byte[] data;
        boolean dirty;

        Block(byte[] data) {
            this.data = data;
        }
    }

    /** What the node checks a new allocation against (QEMU's pre-write overlap check, cheap part). */
    interface OverlapCheck {
        void check(long offset, long length, String what) throws BlockException;
    }

    Qcow2Refcounts(BlockNode file, long fileLength, Qcow2Header h) {
        this.file = file;
        this.fileLength = fileLength;
        this.clusterBits = h.clusterBits();
        this.refcountOrder = h.refcountOrder();
        this.bits = 1 << refcountOrder;
        this.entriesPerBlockBits = clusterBits + 3 - refcountOrder;
        this.tableOffset = h.refcountTableOffset();
        this.tableEntries = Integer.toUnsignedLong(h.refcountTableClusters()) << (clusterBits - 3);
        this.capacity = Math.max(4, CACHE_BYTES >>> clusterBits);
    }

    /** The free reasons whose freed clusters are discarded in the file (the node's pass-discard-* options). */
    void setDiscardPassthrough(java.util.Set<FreeReason> reasons) {
        this.passthrough = java.util.EnumSet.noneOf(FreeReason.class);
        this.passthrough.addAll(reasons);
        this.passthrough.add(FreeReason.ALWAYS);
        this.passthrough.remove(FreeReason.NEVER);
    }

    boolean passesDiscard(FreeReason reason) {
        return passthrough.contains(reason);
    }

    void setOverlapCheck(OverlapCheck check) {
        this.overlapCheck = check;
    }

    /** The file grew (a write past its old end): blocks up to the new end are valid. */
    void fileGrew(long length) {
        if (length > fileLength) {
            fileLength = length;
        }
    }

    long tableOffset() {
        return tableOffset;
    }

    long tableBytes() {
        return tableEntries * 8;
    }

    /** The refcount table as it is now (a copy; entries keep their reserved bits). */
    long[] tableCopy() throws BlockException {
        loadTable();
        return table.clone();
    }

    /** The number of entries of the refcount table now (it grows as clusters are allocated). */
    long tableLength() throws BlockException {
        loadTable();
        return table.length;
    }

    /** Entry {@code i} of the refcount table now. */
    long tableEntry(long i) throws BlockException {
        loadTable();
        return table[(int) i];
    }

    /** log2 of the entries in one refcount block. */
    int entriesPerBlockBits() {
        return entriesPerBlockBits;
    }

    /**
     * Whether {@code [offset, offset + length)} overlaps a refcount block (the
     * overlap check, made before every allocation is used): a binary search
     * in {@link #blockOffsets}, not a pass over the whole table (8192 entries
     * for a new image's one table cluster at 64 KiB clusters, most of them
     * empty), which took 40% of the CPU of 4 KiB allocating writes.
     */
    boolean overlapsBlock(long offset, long length) throws BlockException {
        loadTable();
        if (blockOffsets == null) {
            indexBlocks();
        }
        // The first block that ends after offset; it overlaps when it starts before the range ends.
        long after = offset - clusterSize();
        int lo = 0;
        int hi = blockCount;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (blockOffsets[mid] <= after) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo < blockCount && blockOffsets[lo] < offset + length;
    }

    /** Sorts the table's non-zero block offsets into {@link #blockOffsets}. */
    private void indexBlocks() {
        int n = 0;
        for (long e : table) {
            if ((e & TABLE_OFFSET_MASK) != 0) {
                n++;
            }
        }
        // Room for the blocks to come (sized to the blocks, not the table: most of a table is empty).
        long[] offsets = new long[n + 16];
        n = 0;
        for (long e : table) {
            long b = e & TABLE_OFFSET_MASK;
            if (b != 0) {
                offsets[n++] = b;
            }
        }
        java.util.Arrays.sort(offsets, 0, n);
        blockOffsets = offsets;
        blockCount = n;
    }

    /** A table entry that was empty now points at the block at {@code at}: the index gains it, in order. */
    private void blockAdded(long at) {
        if (blockOffsets == null) {
            return; // built from the table when first needed
        }
        long b = at & TABLE_OFFSET_MASK;
        int i = java.util.Arrays.binarySearch(blockOffsets, 0, blockCount, b);
        if (i < 0) {
            i = -i - 1;
        }
        if (blockCount == blockOffsets.length) {
            blockOffsets = java.util.Arrays.copyOf(blockOffsets, blockCount * 2);
        }
        // New blocks mostly go at the end of the file: the copy is then empty.
        System.arraycopy(blockOffsets, i, blockOffsets, i + 1, blockCount - i);
        blockOffsets[i] = b;
        blockCount++;
    }

    private long clusterSize() {
        return 1L << clusterBits;
    }

    // ---------------------------------------------------------------- reading

    /** The reference count of the host cluster at {@code hostOffset}; 0 where no refcount block covers it. */
    long refcount(long hostOffset) throws BlockException {
        return get(hostOffset >>> clusterBits);
    }

    /** Whether a refcount block covers the host cluster at {@code hostOffset}. */
    boolean covered(long hostOffset) throws BlockException {
        return blockFor(hostOffset >>> clusterBits, false) != null;
    }

    private long get(long cluster) throws BlockException {
        Block b = blockFor(cluster, false);
        return b == null ? 0 : read(b.data, cluster & ((1L << entriesPerBlockBits) - 1));
    }

    private long read(byte[] a, long index) {
        long bitOffset = index * bits;
        if (bits >= 8) {
            long v = 0;
            int at = (int) (bitOffset / 8);
            for (int i = 0; i < bits / 8; i++) {
                v = v << 8 | Byte.toUnsignedLong(a[at + i]);
            }
            return v;
        }
        return (Byte.toUnsignedInt(a[(int) (bitOffset / 8)]) >>> (bitOffset % 8)) & ((1 << bits) - 1);
    }

    private void write(byte[] a, long index, long v) {
        long bitOffset = index * bits;
        if (bits >= 8) {
            int at = (int) (bitOffset / 8);
            for (int i = bits / 8 - 1; i >= 0; i--) {
                a[at + i] = (byte) v;
                v >>>= 8;
            }
            return;
        }
        int at = (int) (bitOffset / 8);
        int shift = (int) (bitOffset % 8);
        int mask = ((1 << bits) - 1) << shift;
        a[at] = (byte) ((a[at] & ~mask) | (((int) v << shift) & mask));
    }

    private long maxRefcount() {
        return bits == 64 ? -1L : (1L << bits) - 1;
    }

    /**
     * How many host clusters below {@code endCluster} have a non-zero count,
     * counting no further once the count passes {@code stopAbove}.
     */
    long countReferenced(long endCluster, long stopAbove) throws BlockException {
        loadTable();
        long perBlock = 1L << entriesPerBlockBits;
        long count = 0;
        for (long t = 0; t < tableEntries && t * perBlock < endCluster && count <= stopAbove; t++) {
            long block = table[(int) t] & TABLE_OFFSET_MASK;
            if (block == 0 || (block & (clusterSize() - 1)) != 0 || block > fileLength - clusterSize()) {
                continue;
            }
            byte[] a = load(block).data;
            long n = Math.min(perBlock, endCluster - t * perBlock);
            for (long i = 0; i < n; i++) {
                if (read(a, i) != 0) {
                    count++;
                }
            }
        }
        return count;
    }

    private void loadTable() throws BlockException {
        if (table != null) {
            return;
        }
        if (tableEntries > Qcow2Limits.MAX_REFTABLE_BYTES / 8) {
            throw new BlockException.Corrupt("Reference count table too large");
        }
        file.debugEvent(DebugEvent.REFTABLE_LOAD);
        ByteBuffer b = ByteBuffer.allocate((int) tableEntries * 8);
        file.read(tableOffset, b);
        long[] t = new long[(int) tableEntries];
        b.flip();
        b.asLongBuffer().get(t);
        table = t;
        blockOffsets = null;
    }

    /** The cached block covering {@code cluster}; null when none exists and {@code create} is false. */
    private Block blockFor(long cluster, boolean create) throws BlockException {
        loadTable();
        long tableIndex = cluster >>> entriesPerBlockBits;
        if (tableIndex >= tableEntries || (table[(int) tableIndex] & TABLE_OFFSET_MASK) == 0) {
            if (!create) {
                return null;
            }
            ensureBlock(cluster, cluster);
            return blockFor(cluster, false);
        }
        long block = table[(int) tableIndex] & TABLE_OFFSET_MASK;
        if ((block & (clusterSize() - 1)) != 0 || block > fileLength - clusterSize()) {
            throw new BlockException.Corrupt("Refcount block offset 0x" + Long.toHexString(block)
                    + " (refcount table index " + tableIndex + ") is unaligned or past the end of the image file");
        }
        return load(block);
    }

    private Block load(long offset) throws BlockException {
        Block b = cache.get(offset);
        if (b != null) {
            return b;
        }
        file.debugEvent(DebugEvent.REFBLOCK_LOAD);
        ByteBuffer buf = ByteBuffer.allocate((int) clusterSize());
        file.read(offset, buf);
        b = new Block(buf.array());
        cache.put(offset, b);
        trim();
        return b;
    }

    /** Keeps the cache within its bound; a dirty block leaving it is written first (always safe, see above). */
    private void trim() throws BlockException {
        Iterator<Map.Entry<Long, Block>> it = cache.entrySet().iterator();
        while (cache.size() > capacity && it.hasNext()) {
            Map.Entry<Long, Block> e = it.next();
            if (e.getValue().dirty) {
                writeBlock(e.getKey(), e.getValue());
            }
            it.remove();
        }
    }

    /**
     * A count dropped since the last barrier: the L2 entries that stopped using those clusters were written
     * to the file first, but only a flush of the file keeps a power cut from keeping the lower count without
     * them (QEMU: the refcount cache depends on the L2 cache, and flushing a dependency flushes the file).
     */
    private boolean decreased;
    /**
     * Refcount structures were written to the file since the last flush that {@link #barrierDone} reported:
     * a table written next (an L2 or L1 entry using a counted cluster) needs a flush of the file first, even
     * when no block is dirty any more (one written on eviction, or before a flush that failed: QEMU keeps the
     * L2 cache's dependency on the refcount cache until a flush of the file succeeds).
     */
    private boolean unflushed;

    private void writeBlock(long offset, Block b) throws BlockException {
        if (decreased) {
            // Cleared only once the flush worked: after a failed one (fsyncgate) the L2 writes that dropped the
            // references may be lost, so no dropped count is written until a flush succeeds (never, here).
            file.flush();
            decreased = false;
        }
        // QEMU's refcount cache reports refblock_update_part when it writes a block (refblock_update is unused).
        file.debugEvent(DebugEvent.REFBLOCK_UPDATE_PART);
        unflushed = true;
        file.write(offset, ByteBuffer.wrap(b.data), 0);
        b.dirty = false;
    }

    /** Whether a table write must be preceded by {@link #flush} and a flush of the file. */
    boolean needsBarrier() {
        return unflushed || hasDirty();
    }

    /** The file was flushed after {@link #flush}: what the refcount structures hold is on the disk. */
    void barrierDone() {
        if (!hasDirty()) {
            unflushed = false;
        }
    }

    /**
     * Writes every dirty block to the file (step one of a flush, and before
     * any L2 or L1 write), then discards the clusters freed since (their
     * zero counts are in the file now).
     */
    void flush() throws BlockException {
        for (Map.Entry<Long, Block> e : cache.entrySet()) {
            if (e.getValue().dirty) {
                writeBlock(e.getKey(), e.getValue());
            }
        }
        processDiscards();
    }

    /**
     * Discards the pending freed ranges. As QEMU's qcow2_process_discards,
     * a failed discard is ignored: discarding only gives space back, the
     * clusters are free either way.
     */
    private void processDiscards() {
        while (!pendingDiscards.isEmpty()) {
            Map.Entry<Long, Long> r = pendingDiscards.pollFirstEntry();
            try {
                file.discard(r.getKey(), r.getValue() - r.getKey());
            } catch (BlockException ignored) {
                // optional, see above
            }
        }
    }

    /** Queues {@code [start, end)} for discard, merged with its neighbours. */
    private void queueDiscard(long start, long end) throws BlockException {
        Map.Entry<Long, Long> before = pendingDiscards.floorEntry(start);
        if (before != null && before.getValue() >= start) {
            start = before.getKey();
            end = Math.max(end, before.getValue());
            pendingDiscards.remove(before.getKey());
        }
        Long after = pendingDiscards.get(end);
        if (after != null) {
            pendingDiscards.remove(end);
            end = after;
        }
        pendingDiscards.put(start, end);
        if (pendingDiscards.size() > MAX_PENDING_DISCARDS) {
            flush();
        }
    }

    /** Takes {@code [start, end)} out of the pending discards: those clusters are being allocated. */
    private void unqueueDiscard(long start, long end) {
        if (pendingDiscards.isEmpty()) {
            return;
        }
        Map.Entry<Long, Long> first = pendingDiscards.floorEntry(start);
        long from = first != null ? first.getKey() : start;
        for (Map.Entry<Long, Long> r : new java.util.ArrayList<>(pendingDiscards.subMap(from, true, end, false)
                .entrySet())) {
            long rs = r.getKey();
            long re = r.getValue();
            if (re <= start || rs >= end) {
                continue;
            }
            pendingDiscards.remove(rs);
            if (rs < start) {
                pendingDiscards.put(rs, start);
            }
            if (re > end) {
                pendingDiscards.put(end, re);
            }
        }
    }

    boolean hasDirty() {
        for (Block b : cache.values()) {
            if (b.dirty) {
                return true;
            }
        }
        return false;
    }

    // ---------------------------------------------------------------- updating

    /** Adds {@code delta} to the count of each host cluster in {@code [offset, offset + length)}. */
    void update(long offset, long length, long delta) throws BlockException {
        update(offset, length, delta, FreeReason.NEVER);
    }

    /**
     * As {@link #update(long, long, long)}; a cluster whose count drops to 0
     * is discarded in the file when {@code reason} passes (QEMU's
     * update_refcount with its discard type). A count that grows takes its
     * cluster out of the pending discards.
     */
    void update(long offset, long length, long delta, FreeReason reason) throws BlockException {
        if (length <= 0) {
            return;
        }
        if (delta > 0) {
            long cs = clusterSize();
            unqueueDiscard(offset & -cs, ((offset + length - 1) & -cs) + cs);
        }
        updateCounts(offset, length, delta, delta < 0 && passthrough.contains(reason));
    }

    private void updateCounts(long offset, long length, long delta, boolean discardFreed) throws BlockException {
        if (delta < 0) {
            decreased = true;
        }
        long first = offset >>> clusterBits;
        long last = (offset + length - 1) >>> clusterBits;
        long blockIndex = -1;
        for (long c = first; c <= last; c++) {
            if (c >>> entriesPerBlockBits != blockIndex) {
                // QEMU reports refblock_alloc each time an update reaches a refcount block, allocated or not.
                blockIndex = c >>> entriesPerBlockBits;
                file.debugEvent(DebugEvent.REFBLOCK_ALLOC);
            }
            Block b = blockFor(c, delta > 0);
            long index = c & ((1L << entriesPerBlockBits) - 1);
            long old = b == null ? 0 : read(b.data, index);
            long v = old + delta;
            if (delta < 0 && Long.compareUnsigned(old, -delta) < 0) {
                throw new BlockException.Corrupt("Refcount of host cluster 0x" + Long.toHexString(c << clusterBits)
                        + " would drop below zero (it is " + old + ")");
            }
            if (delta > 0 && (Long.compareUnsigned(v, maxRefcount()) > 0 || Long.compareUnsigned(v, old) < 0)) {
                throw new BlockException(Errno.ERANGE, "Refcount of host cluster 0x"
                        + Long.toHexString(c << clusterBits) + " would exceed the " + bits + "-bit maximum");
            }
            write(b.data, index, v);
            b.dirty = true;
            if (v == 0 && discardFreed) {
                queueDiscard(c << clusterBits, (c + 1) << clusterBits);
            }
            if (v == 0) {
                if (c < freeHint) {
                    freeHint = c;
                }
                if (c < runHint) {
                    runHint = c;
                }
                if (freeByteOffset != 0 && freeByteOffset >>> clusterBits == c) {
                    freeByteOffset = 0; // the cluster is free now: it may go to anything
                }
            }
        }
    }

    /** Frees host clusters: their counts drop by one. The caller has written every L2 entry that referenced them. */
    void free(long offset, long length) throws BlockException {
        free(offset, length, FreeReason.NEVER);
    }

    /** As {@link #free(long, long)}, discarding the clusters that become free when {@code reason} passes. */
    void free(long offset, long length, FreeReason reason) throws BlockException {
        file.debugEvent(DebugEvent.CLUSTER_FREE);
        update(offset, length, -1, reason);
    }

    /**
     * Allocates {@code n} contiguous free host clusters with count 1 and
     * returns the first one's offset. Creates refcount blocks, and grows the
     * refcount table, as the new clusters need.
     */
    long allocate(int n, String what) throws BlockException {
        file.debugEvent(DebugEvent.CLUSTER_ALLOC);
        loadTable();
        long from = n == 1 ? freeHint : Math.max(freeHint, runHint);
        while (true) {
            long start = findFree(from, n);
            // Nothing below start fits: a search after new refcount blocks goes on from here, not from the hint.
            from = start;
            if (n > 1) {
                runHint = start;
            }
            // Every cluster of the run needs a refcount block: new ones go right after the run, never inside it
            // (a block inside its own range would break every run as long as a range).
            int ready = blocksForRun(start, n);
            if (ready == RUN_RETRY) {
                continue;
            }
            if (ready == RUN_SKIP) {
                from = start + 1;
                continue;
            }
            overlapCheck.check(start << clusterBits, (long) n << clusterBits, what);
            update(start << clusterBits, (long) n << clusterBits, 1);
            if (n == 1 || start == freeHint) {
                freeHint = start + n;
            }
            if (n > 1) {
                runHint = start + n;
            }
            return start << clusterBits;
        }
    }

    /**
     * Room for {@code size} bytes of compressed data (QEMU's qcow2_alloc_bytes):
     * after the previous compressed cluster when it fits in the rest of that
     * host cluster, else at the start of new clusters. Every host cluster the
     * bytes touch gains one reference.
     */
    long allocateBytes(int size) throws BlockException {
        file.debugEvent(DebugEvent.CLUSTER_ALLOC_BYTES);
        long offset = freeByteOffset;
        if (offset != 0 && get(offset >>> clusterBits) == maxRefcount()) {
            offset = 0; // one more reference would overflow the count (1-bit refcounts): start a new cluster
        }
        if (offset != 0 && (offset & (clusterSize() - 1)) + size <= clusterSize()) {
            update(offset, size, 1);
        } else {
            int clusters = (int) ((size + clusterSize() - 1) >>> clusterBits);
            offset = allocate(clusters, "compressed cluster");
        }
        long next = offset + size;
        freeByteOffset = (next & (clusterSize() - 1)) == 0 ? 0 : next;
        return offset;
    }

    private static final int RUN_READY = 0;
    private static final int RUN_RETRY = 1;
    private static final int RUN_SKIP = 2;

    /**
     * Makes refcount blocks exist for the free run {@code [start, start + n)}:
     * the missing ones are placed in the clusters right after the run (and
     * count themselves there, with more new blocks if those clusters need
     * them too). Returns RUN_READY, RUN_RETRY when the refcount table had to
     * grow first (the layout changed: search again from {@code start}), or
     * RUN_SKIP when the clusters after the run are taken.
     */
    private int blocksForRun(long start, int n) throws BlockException {
        int k = 0;
        java.util.List<Long> missing;
        while (true) {
            long end = start + n + k;
            long lastIndex = (end - 1) >>> entriesPerBlockBits;
            if (lastIndex >= tableEntries) {
                long coveredEnd = tableEntries << entriesPerBlockBits;
                growTable(lastIndex, Math.max(start, coveredEnd));
                return RUN_RETRY;
            }
            missing = new ArrayList<>();
            for (long t = start >>> entriesPerBlockBits; t <= lastIndex; t++) {
                if ((table[(int) t] & TABLE_OFFSET_MASK) == 0) {
                    missing.add(t);
                }
            }
            if (missing.size() == k) {
                break;
            }
            k = missing.size();
        }
        if (k == 0) {
            return RUN_READY;
        }
        for (long p = start + n; p < start + n + k; p++) {
            if (get(p) != 0) {
                return RUN_SKIP;
            }
        }
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC);
        Map<Long, Block> created = new LinkedHashMap<>();
        for (int j = 0; j < k; j++) {
            created.put(missing.get(j), new Block(new byte[(int) clusterSize()]));
        }
        Map<Long, Block> touchedOld = new LinkedHashMap<>();
        for (int j = 0; j < k; j++) {
            long p = start + n + j;
            overlapCheck.check(p << clusterBits, clusterSize(), "refcount block");
            Block owner = created.get(p >>> entriesPerBlockBits);
            if (owner == null) {
                owner = blockFor(p, false);
                touchedOld.put(table[(int) (p >>> entriesPerBlockBits)] & TABLE_OFFSET_MASK, owner);
            }
            write(owner.data, p & ((1L << entriesPerBlockBits) - 1), 1);
            owner.dirty = true;
        }
        // The blocks (and the old blocks that now count them) first, then the table entries that point at them.
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC_WRITE);
        int j = 0;
        for (Block b : created.values()) {
            long at = (start + n + j++) << clusterBits;
            unflushed = true;
            file.write(at, ByteBuffer.wrap(b.data), 0);
            b.dirty = false;
            fileGrew(at + clusterSize());
        }
        for (Map.Entry<Long, Block> e : touchedOld.entrySet()) {
            writeBlock(e.getKey(), e.getValue());
        }
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC_HOOKUP);
        j = 0;
        for (Map.Entry<Long, Block> e : created.entrySet()) {
            long at = (start + n + j++) << clusterBits;
            file.write(tableOffset + e.getKey() * 8, ByteBuffer.allocate(8).putLong(0, at), 0);
            table[e.getKey().intValue()] = at;
            blockAdded(at);
            cache.put(at, e.getValue());
        }
        trim();
        return RUN_READY;
    }

    private long findFree(long from, int n) throws BlockException {
        long c = from;
        int run = 0;
        while (run < n) {
            if (get(c + run) == 0) {
                run++;
            } else {
                c = c + run + 1;
                run = 0;
            }
        }
        return c;
    }

    /**
     * Makes a refcount block exist for host cluster {@code cluster}: a new
     * block lies in a free cluster of the range it covers and counts itself;
     * a cluster past the table's reach grows the table. {@code avoid} is a
     * cluster the new block must not take (-1: none).
     */
    private void ensureBlock(long cluster, long avoid) throws BlockException {
        long tableIndex = cluster >>> entriesPerBlockBits;
        if (tableIndex >= tableEntries) {
            long coveredEnd = tableEntries << entriesPerBlockBits;
            long at = Math.max(cluster, coveredEnd);
            if (at == avoid) {
                at++;
            }
            growTable(tableIndex, at);
            if (blockFor(cluster, false) != null) {
                return;
            }
        }
        long rangeStart = tableIndex << entriesPerBlockBits;
        long place = cluster != avoid ? cluster : (cluster == rangeStart ? rangeStart + 1 : rangeStart);
        long offset = place << clusterBits;
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC);
        overlapCheck.check(offset, clusterSize(), "refcount block");
        Block b = new Block(new byte[(int) clusterSize()]);
        write(b.data, place & ((1L << entriesPerBlockBits) - 1), 1);
        // The block first, then the table entry that points at it.
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC_WRITE);
        unflushed = true;
        file.write(offset, ByteBuffer.wrap(b.data), 0);
        fileGrew(offset + clusterSize());
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC_HOOKUP);
        ByteBuffer e = ByteBuffer.allocate(8).putLong(0, offset);
        file.write(tableOffset + tableIndex * 8, e, 0);
        table[(int) tableIndex] = offset;
        blockAdded(offset);
        cache.put(offset, b);
        trim();
    }

    /**
     * Grows the refcount table so it reaches {@code neededIndex}, placing the
     * new table and the blocks that count it at {@code at} and after, where
     * every cluster is free (past what the old table reaches). The new blocks
     * and table are written, then the header switches to the new table, then
     * the old table's clusters are freed.
     */
    private void growTable(long neededIndex, long at) throws BlockException {
        file.debugEvent(DebugEvent.REFTABLE_GROW);
        long perTableCluster = clusterSize() / 8;
        int blocks = 0;
        long tableClusters = 0;
        long newEntries;
        while (true) {
            long end = at + blocks + tableClusters; // exclusive
            long want = Math.max(neededIndex + 1, ((end - 1) >>> entriesPerBlockBits) + 1);
            want = Math.max(want, tableEntries + tableEntries / 2);
            long clusters = (want + perTableCluster - 1) / perTableCluster;
            int newBlocks = (int) (((at + blocks + clusters - 1) >>> entriesPerBlockBits)
                    - (at >>> entriesPerBlockBits) + 1);
            if (newBlocks == blocks && clusters == tableClusters) {
                newEntries = clusters * perTableCluster;
                break;
            }
            blocks = newBlocks;
            tableClusters = clusters;
        }
        if (newEntries * 8 > Qcow2Limits.MAX_REFTABLE_BYTES) {
            throw new BlockException(Errno.EFBIG, "Refcount table would grow past "
                    + Qcow2Limits.MAX_REFTABLE_BYTES + " bytes");
        }
        long firstIndex = at >>> entriesPerBlockBits;
        long newTableOffset = (at + blocks) << clusterBits;
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC);
        overlapCheck.check(at << clusterBits, (blocks + tableClusters) << clusterBits, "refcount table");
        List<Block> newBlocks = new ArrayList<>(blocks);
        for (int i = 0; i < blocks; i++) {
            newBlocks.add(new Block(new byte[(int) clusterSize()]));
        }
        for (long c = at; c < at + blocks + tableClusters; c++) {
            Block b = newBlocks.get((int) ((c >>> entriesPerBlockBits) - firstIndex));
            write(b.data, c & ((1L << entriesPerBlockBits) - 1), 1);
        }
        long[] newTable = new long[(int) newEntries];
        System.arraycopy(table, 0, newTable, 0, table.length);
        for (int i = 0; i < blocks; i++) {
            newTable[(int) (firstIndex + i)] = (at + i) << clusterBits;
        }
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC_WRITE_BLOCKS);
        for (int i = 0; i < blocks; i++) {
            unflushed = true;
            file.write((at + i) << clusterBits, ByteBuffer.wrap(newBlocks.get(i).data), 0);
        }
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC_WRITE_TABLE);
        ByteBuffer t = ByteBuffer.allocate((int) (tableClusters << clusterBits));
        t.asLongBuffer().put(newTable);
        file.write(newTableOffset, t, 0);
        fileGrew(newTableOffset + (tableClusters << clusterBits));
        // Whatever is dirty must be in the file before the header points at a table that is.
        flush();
        file.debugEvent(DebugEvent.REFBLOCK_ALLOC_SWITCH_TABLE);
        ByteBuffer h = ByteBuffer.allocate(12).putLong(0, newTableOffset).putInt(8, (int) tableClusters);
        file.write(HEADER_REFTABLE_FIELDS, h, 0);
        long oldOffset = tableOffset;
        long oldBytes = tableEntries * 8;
        tableOffset = newTableOffset;
        tableEntries = newEntries;
        table = newTable;
        blockOffsets = null;
        for (int i = 0; i < blocks; i++) {
            cache.put((at + i) << clusterBits, newBlocks.get(i));
        }
        trim();
        free(oldOffset, oldBytes);
    }
}
