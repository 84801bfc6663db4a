package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Writes a new refcount structure from the counts a check computed, as
 * QEMU's rebuild_refcount_structure does, leaving the old one in place (it
 * is leaked, and the check's next pass frees it):
 * <ol>
 *   <li>for every refcount block range with a cluster in use, allocate a
 *       free cluster for the block (in the computed counts, so the block
 *       counts itself) and write the block, a slice of the counts;</li>
 *   <li>allocate the table where it fits, and write again the blocks that
 *       cover it; if that made the table grow, free its place and go
 *       round again;</li>
 *   <li>write the table, then point the header at it (offset and clusters,
 *       written together).</li>
 * </ol>
 */
final class Qcow2RefcountRebuild {
    /** Header field: refcount_table_offset (u64) then refcount_table_clusters (u32). */
    private static final int HEADER_REFTABLE_OFFSET = 48;

    record Rebuilt(long tableOffset, int tableClusters, long[] table) {
    }

    private final BlockNode file;
    private final Qcow2CheckCounts counts;
    private final int clusterBits;
    private final int blockBits;
    private long[] table = new long[0];

    private Qcow2RefcountRebuild(BlockNode file, Qcow2CheckCounts counts, int clusterBits) {
        this.file = file;
        this.counts = counts;
        this.clusterBits = clusterBits;
        this.blockBits = counts.entriesPerChunkBits();
    }

    static Rebuilt rebuild(BlockNode file, Qcow2CheckCounts counts, int clusterBits) throws BlockException {
        return new Qcow2RefcountRebuild(file, counts, clusterBits).run();
    }

    private Rebuilt run() throws BlockException {
        boolean grown = writeBlocks(0, counts.size());
        long tableOffset;
        long tableClusters;
        do {
            long tableBytes = (long) table.length * 8;
            tableClusters = (tableBytes + (1L << clusterBits) - 1) >>> clusterBits;
            long[] first = {0};
            tableOffset = allocate(tableClusters, first);
            long start = tableOffset >>> clusterBits;
            long end = start + tableClusters;
            grown = writeBlocks(start, end);
            if (grown) {
                for (long c = start; c < end; c++) {
                    counts.set(c, 0);
                }
            }
        } while (grown);

        ByteBuffer t = ByteBuffer.allocate(table.length * 8);
        t.asLongBuffer().put(table);
        file.write(tableOffset, t, WriteFlags.NONE);
        file.flush();
        ByteBuffer h = ByteBuffer.allocate(12);
        h.putLong(0, tableOffset).putInt(8, (int) tableClusters);
        file.write(HEADER_REFTABLE_OFFSET, h, WriteFlags.NONE);
        file.flush();
        return new Rebuilt(tableOffset, (int) tableClusters, table.clone());
    }

    /**
     * Writes the blocks for the clusters in use in {@code [first, end)},
     * allocating those not yet placed; true when the table had to grow.
     */
    private boolean writeBlocks(long first, long end) throws BlockException {
        boolean grown = false;
        long[] firstFree = {0};
        for (long cluster = first; cluster < end; cluster++) {
            if (counts.get(cluster) == 0) {
                continue;
            }
            long index = cluster >>> blockBits;
            long blockStart = index << blockBits;
            long offset;
            if (index < table.length && table[(int) index] != 0) {
                offset = table[(int) index];
            } else {
                // Never place a block inside a range whose block was already written.
                firstFree[0] = Math.max(firstFree[0], blockStart);
                offset = allocate(1, firstFree);
                long at = offset >>> clusterBits;
                if (at >= end) {
                    end = at + 1; // the block that counts this new block must be written too
                }
                if (index >= table.length) {
                    long bytes = ((index + 1) * 8 + (1L << clusterBits) - 1) >>> clusterBits << clusterBits;
                    table = Arrays.copyOf(table, (int) (bytes / 8));
                    grown = true;
                }
                table[(int) index] = offset;
            }
            file.write(offset, ByteBuffer.wrap(counts.chunk(index)), WriteFlags.NONE);
            cluster = blockStart + (1L << blockBits) - 1;
        }
        return grown;
    }

    /**
     * {@code n} contiguous clusters free in the counts, from {@code firstFree[0]}
     * on, growing the counts past their end if need be; marks them used and
     * returns the offset of the first. {@code firstFree[0]} moves to the first
     * gap seen (QEMU's alloc_clusters_imrt).
     */
    private long allocate(long n, long[] firstFree) throws BlockException {
        long cluster = firstFree[0];
        boolean firstGap = true;
        long free = 0;
        for (; cluster < counts.size() && free < n; cluster++) {
            if (counts.get(cluster) == 0) {
                free++;
                if (firstGap) {
                    firstFree[0] = cluster;
                    firstGap = false;
                }
            } else {
                free = 0;
            }
        }
        if (free < n && !counts.growTo(cluster + n - free)) {
            throw new BlockException(io.jblock.block.Errno.ENOMEM, "ERROR allocating refblock");
        }
        cluster -= free;
        for (long i = 0; i < n; i++) {
            counts.set(cluster + i, 1);
        }
        return cluster << clusterBits;
    }
}
