package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Changes the width of the reference counts of an open version 3 image
 * (qemu-img amend -o refcount_bits=N), as QEMU 7.2's
 * qcow2_change_refcount_order does, so the result is laid out the same:
 *
 * <ol>
 *   <li>Walk the old counts in new-block-sized steps; every step with a
 *       count not zero gets a cluster for its new block, allocated through
 *       the old structures (so the new blocks count themselves). Then a run
 *       of clusters for the new table. Allocating may have made clusters in
 *       use that the last walk saw free, so walk again until a walk
 *       allocates nothing (the table's earlier place is freed each round).</li>
 *   <li>Write every new block, then the new table; flush the old
 *       structures and the file. Until now the header still names the old
 *       table: a crash leaves the image as it was, with leaked clusters.</li>
 *   <li>Switch the header to the new table and width (one write of the
 *       header cluster), flush, then free the old blocks and the old table
 *       in the new structures. A crash after the switch leaks them only.</li>
 * </ol>
 */
final class Qcow2RefcountOrder {
    private static final long TABLE_OFFSET_MASK = 0xfffffffffffffe00L;

    /** Progress of the walks: {@code done} of {@code total}. */
    interface Status {
        void report(long done, long total);
    }

    private final Qcow2Node node;
    private final BlockNode file;
    private final Qcow2Refcounts old;
    private final int clusterBits;
    private final int newOrder;
    private final int newBits;
    private final int newBlockEntriesBits;
    private final Status status;
    private long[] newTable = new long[0];

    private Qcow2RefcountOrder(Qcow2Node node, BlockNode file, Qcow2Refcounts old, int clusterBits, int newOrder,
                               Status status) {
        this.node = node;
        this.file = file;
        this.old = old;
        this.clusterBits = clusterBits;
        this.newOrder = newOrder;
        this.newBits = 1 << newOrder;
        this.newBlockEntriesBits = clusterBits + 3 - newOrder;
        this.status = status;
    }

    /** Runs the change; the caller holds the metadata lock and has written every cached L2 slice. */
    static Qcow2Header change(Qcow2Node node, BlockNode file, Qcow2Refcounts refcounts, int clusterBits,
                              int newOrder, Status status) throws BlockException {
        return new Qcow2RefcountOrder(node, file, refcounts, clusterBits, newOrder, status).run();
    }

    private Qcow2Header run() throws BlockException {
        long clusterSize = 1L << clusterBits;
        long tableOffset = 0;
        long tableAllocatedEntries = 0;
        int walk = 0;
        boolean allocated;
        do {
            int totalWalks = Math.max(walk + 2, 3);
            allocated = walk(walk++, totalWalks, true);
            if (allocated) {
                if (tableOffset != 0) {
                    old.free(tableOffset, tableAllocatedEntries * 8);
                }
                int clusters = (int) ((newTable.length * 8L + clusterSize - 1) >>> clusterBits);
                tableOffset = old.allocate(clusters, "refcount table");
                node.fileGrewTo(tableOffset + ((long) clusters << clusterBits));
                tableAllocatedEntries = newTable.length;
            }
        } while (allocated);
        walk(walk, walk + 1, false);

        ByteBuffer t = ByteBuffer.allocate(newTable.length * 8);
        t.asLongBuffer().put(newTable);
        file.write(tableOffset, t, 0);
        old.flush();
        // Every new block and the new table are durable before the header names them.
        file.flush();

        long[] oldTable = old.tableCopy();
        long oldTableOffset = old.tableOffset();
        long oldTableBytes = old.tableBytes();
        long newTableOffset = tableOffset;
        int newTableClusters = (int) (newTable.length * 8L >>> clusterBits);
        Qcow2Header now = Qcow2HeaderWriter.rewrite(file, clusterSize, new Qcow2HeaderWriter.Edit(h ->
                Qcow2Amend.with(h, h.version(), h.incompatibleFeatures(), h.compatibleFeatures(),
                        h.autoclearFeatures(), newOrder, newTableOffset, newTableClusters), null));
        file.flush();

        Qcow2Refcounts fresh = new Qcow2Refcounts(file, node.fileLength(), now);
        for (long e : oldTable) {
            long block = e & TABLE_OFFSET_MASK;
            if (block != 0) {
                fresh.free(block, clusterSize);
            }
        }
        fresh.free(oldTableOffset, oldTableBytes);
        fresh.flush();
        file.flush();
        return now;
    }

    /**
     * One walk over the old counts. Allocating: places a block for every
     * new block range with a count (growing the new table as QEMU does, to
     * whole clusters of entries); true when it placed one. Writing: writes
     * each placed block.
     */
    private boolean walk(int index, int total, boolean allocate) throws BlockException {
        boolean placed = false;
        long blockEntries = 1L << newBlockEntriesBits;
        long oldEntriesBits = old.entriesPerBlockBits();
        long oldTableSize = old.tableLength();
        byte[] block = allocate ? null : new byte[1 << clusterBits];
        long newIndex = 0;
        long inBlock = 0;
        boolean empty = true;
        // The table may grow under this walk's allocations: its length is read again each time, as QEMU does.
        for (long i = 0; i < old.tableLength(); i++) {
            status.report(index * oldTableSize + i, total * oldTableSize);
            long blockOffset = old.tableEntry(i) & TABLE_OFFSET_MASK;
            long firstCluster = i << oldEntriesBits;
            if (blockOffset == 0) {
                // No block: all its counts are 0. Skip them a new block at a time (QEMU visits each one, which
                // takes hours on an image with 2 MiB clusters and a table of a quarter of a million entries).
                long left = 1L << oldEntriesBits;
                while (left > 0) {
                    if (inBlock == blockEntries) {
                        placed |= finish(newIndex, empty, block, allocate);
                        newIndex++;
                        inBlock = 0;
                        if (block != null && !empty) {
                            Arrays.fill(block, (byte) 0); // only counts that were set need clearing
                        }
                        empty = true;
                    }
                    long take = Math.min(left, blockEntries - inBlock);
                    inBlock += take;
                    left -= take;
                }
                continue;
            }
            for (long j = 0; j < (1L << oldEntriesBits); j++) {
                if (inBlock == blockEntries) {
                    placed |= finish(newIndex, empty, block, allocate);
                    newIndex++;
                    inBlock = 0;
                    if (block != null && !empty) {
                        Arrays.fill(block, (byte) 0);
                    }
                    empty = true;
                }
                long count = old.refcount((firstCluster + j) << clusterBits);
                if (newBits < 64 && (count >>> newBits) != 0) {
                    throw new BlockException(Errno.EINVAL, "Cannot decrease refcount entry width to " + newBits
                            + " bits: Cluster at offset 0x" + Long.toHexString((firstCluster + j) << clusterBits)
                            + " has a refcount of " + Long.toUnsignedString(count));
                }
                if (block != null && count != 0) {
                    set(block, inBlock, count);
                }
                inBlock++;
                empty &= count == 0;
            }
        }
        if (inBlock > 0) {
            placed |= finish(newIndex, empty, block, allocate);
        }
        status.report((index + 1) * oldTableSize, total * oldTableSize);
        return placed;
    }

    private boolean finish(long index, boolean empty, byte[] block, boolean allocate) throws BlockException {
        if (allocate) {
            if (empty) {
                return false;
            }
            if (index >= newTable.length) {
                long perCluster = 1L << (clusterBits - 3);
                long size = (index + 1 + perCluster - 1) / perCluster * perCluster;
                if (size * 8 > Qcow2Limits.MAX_REFTABLE_BYTES) {
                    throw new BlockException(Errno.ENOTSUP, "This operation would make the refcount table grow"
                            + " beyond the maximum size supported by QEMU, aborting");
                }
                newTable = Arrays.copyOf(newTable, (int) size);
            }
            if (newTable[(int) index] == 0) {
                long at = old.allocate(1, "refcount block");
                node.fileGrewTo(at + (1L << clusterBits));
                newTable[(int) index] = at;
                return true;
            }
            return false;
        }
        if (index < newTable.length && newTable[(int) index] != 0) {
            file.write(newTable[(int) index], ByteBuffer.wrap(block), 0);
        } else if (!empty) {
            throw new IllegalStateException("refcount block " + index + " has counts but no place");
        }
        return false;
    }

    /** Big-endian entries; widths below a byte fill each byte from its least significant bits. */
    private void set(byte[] block, long index, long v) {
        if (newBits >= 8) {
            int bytes = newBits / 8;
            int at = (int) (index * bytes);
            for (int k = bytes - 1; k >= 0; k--) {
                block[at + k] = (byte) v;
                v >>>= 8;
            }
        } else {
            int perByte = 8 / newBits;
            int at = (int) (index / perByte);
            int shift = (int) (index % perByte) * newBits;
            block[at] |= (byte) (v << shift);
        }
    }
}
