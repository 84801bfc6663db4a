package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

import java.nio.ByteBuffer;

/**
 * Reads reference counts: a refcount table of 64-bit block offsets (bits 9..63),
 * each block one cluster of {@code 2^refcount_order}-bit big-endian counts,
 * one per host cluster. Read side only, and read on demand: the counts matter
 * to writers and to check, not to guest reads.
 */
final class Qcow2Refcounts {
    private static final long TABLE_OFFSET_MASK = 0xfffffffffffffe00L;

    private final BlockNode file;
    private final long fileLength;
    private final int clusterBits;
    private final int refcountOrder;
    private final long tableOffset;
    private final long tableEntries;

    Qcow2Refcounts(BlockNode file, long fileLength, Qcow2Header h) {
        this.file = file;
        this.fileLength = fileLength;
        this.clusterBits = h.clusterBits();
        this.refcountOrder = h.refcountOrder();
        this.tableOffset = h.refcountTableOffset();
        this.tableEntries = Integer.toUnsignedLong(h.refcountTableClusters()) << (clusterBits - 3);
    }

    /** The reference count of the host cluster at {@code hostOffset}; 0 where no refcount block covers it. */
    long refcount(long hostOffset) throws BlockException {
        long cluster = hostOffset >>> clusterBits;
        int entriesPerBlockBits = clusterBits + 3 - refcountOrder;
        long tableIndex = cluster >>> entriesPerBlockBits;
        if (tableIndex >= tableEntries) {
            return 0;
        }
        long block = readLong(tableOffset + tableIndex * 8) & TABLE_OFFSET_MASK;
        if (block == 0) {
            return 0;
        }
        if ((block & ((1L << clusterBits) - 1)) != 0 || block > fileLength - (1L << clusterBits)) {
            throw new BlockException.Corrupt("Refcount block offset 0x" + Long.toHexString(block)
                    + " (refcount table index " + tableIndex + ") is unaligned or past the end of the image file");
        }
        long index = cluster & ((1L << entriesPerBlockBits) - 1);
        int bits = 1 << refcountOrder;
        long bitOffset = index * bits;
        if (bits >= 8) {
            ByteBuffer b = ByteBuffer.allocate(bits / 8);
            file.read(block + bitOffset / 8, b);
            long v = 0;
            for (int i = 0; i < bits / 8; i++) {
                v = v << 8 | Byte.toUnsignedLong(b.get(i));
            }
            return v;
        }
        // Sub-byte widths pack the lowest-numbered entry in the least significant bits of each byte.
        ByteBuffer b = ByteBuffer.allocate(1);
        file.read(block + bitOffset / 8, b);
        return (Byte.toUnsignedInt(b.get(0)) >>> (bitOffset % 8)) & ((1 << bits) - 1);
    }

    /**
     * How many host clusters below {@code endCluster} have a non-zero count,
     * counting no further once the count passes {@code stopAbove}. Reads
     * whole refcount blocks, one cluster each.
     */
    long countReferenced(long endCluster, long stopAbove) throws BlockException {
        int entriesPerBlockBits = clusterBits + 3 - refcountOrder;
        long perBlock = 1L << entriesPerBlockBits;
        int bits = 1 << refcountOrder;
        long count = 0;
        for (long t = 0; t < tableEntries && t * perBlock < endCluster && count <= stopAbove; t++) {
            long block = readLong(tableOffset + t * 8) & TABLE_OFFSET_MASK;
            if (block == 0 || (block & ((1L << clusterBits) - 1)) != 0 || block > fileLength - (1L << clusterBits)) {
                continue;
            }
            ByteBuffer b = ByteBuffer.allocate(1 << clusterBits);
            file.read(block, b);
            byte[] a = b.array();
            long n = Math.min(perBlock, endCluster - t * perBlock);
            for (long i = 0; i < n; i++) {
                long bit = i * bits;
                boolean referenced;
                if (bits >= 8) {
                    referenced = false;
                    for (int k = 0; k < bits / 8 && !referenced; k++) {
                        referenced = a[(int) (bit / 8) + k] != 0;
                    }
                } else {
                    referenced = ((a[(int) (bit / 8)] >>> (bit % 8)) & ((1 << bits) - 1)) != 0;
                }
                if (referenced) {
                    count++;
                }
            }
        }
        return count;
    }

    private long readLong(long at) throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(8);
        file.read(at, b);
        return b.getLong(0);
    }
}
