package io.jblock.format.qcow2;

import java.util.ArrayList;
import java.util.List;

/**
 * The reference counts a check computes, one entry per host cluster (QEMU's
 * in-memory refcount table). Entries are stored exactly as in an on-disk
 * refcount block of the image's width, one cluster-sized chunk per refcount
 * block, so a rebuild writes a chunk as it is:
 *
 * <pre>
 *   width >= 8 bits: big-endian, entry i at byte i * width / 8
 *   width  < 8 bits: entry i in byte i * width / 8, at bit (i * width) % 8,
 *                    the lowest-numbered entry in the least significant bits
 * </pre>
 *
 * Chunks that were never written are not allocated: memory grows with the
 * clusters in use, never with what a damaged table claims. {@link #size()}
 * is the number of entries in play (QEMU's nb_clusters); it grows when a
 * reference lies past the end of the file.
 */
final class Qcow2CheckCounts {
    /**
     * The most entries the check tracks. QEMU refuses images of more than
     * INT_MAX clusters up front; a reference beyond that is a corrupt entry,
     * and tracking it would only make the comparison walk an absurd range.
     */
    static final long MAX_ENTRIES = Integer.MAX_VALUE;

    private final int clusterBits;
    private final int order;
    private final int entriesPerChunkBits;
    private final long max;
    private final List<byte[]> chunks = new ArrayList<>();
    private long size;

    Qcow2CheckCounts(int clusterBits, int refcountOrder, long size) {
        this.clusterBits = clusterBits;
        this.order = refcountOrder;
        this.entriesPerChunkBits = clusterBits + 3 - refcountOrder;
        this.max = refcountOrder == 6 ? -1L : (1L << (1 << refcountOrder)) - 1;
        this.size = size;
    }

    long size() {
        return size;
    }

    /** Grows the entries in play to {@code n} (QEMU's realloc_refcount_array); false past {@link #MAX_ENTRIES}. */
    boolean growTo(long n) {
        if (n > MAX_ENTRIES) {
            return false;
        }
        size = Math.max(size, n);
        return true;
    }

    /** The largest count an entry can hold (all ones; for 64 bits, -1 read as unsigned). */
    long max() {
        return max;
    }

    int entriesPerChunkBits() {
        return entriesPerChunkBits;
    }

    long get(long cluster) {
        int c = (int) (cluster >>> entriesPerChunkBits);
        if (c >= chunks.size() || chunks.get(c) == null) {
            return 0;
        }
        return decode(chunks.get(c), cluster & ((1L << entriesPerChunkBits) - 1), order);
    }

    void set(long cluster, long value) {
        int c = (int) (cluster >>> entriesPerChunkBits);
        byte[] chunk = c < chunks.size() ? chunks.get(c) : null;
        if (chunk == null) {
            if (value == 0) {
                return;
            }
            while (chunks.size() <= c) {
                chunks.add(null);
            }
            chunk = new byte[1 << clusterBits];
            chunks.set(c, chunk);
        }
        encode(chunk, cluster & ((1L << entriesPerChunkBits) - 1), order, value);
    }

    /** Whether chunk {@code c} (the clusters of refcount block {@code c}) has no non-zero entry for sure. */
    boolean chunkEmpty(long c) {
        return c >= chunks.size() || chunks.get((int) c) == null;
    }

    /** Refcount block {@code c} as it goes to disk: a copy of the chunk, zeroes if never written. */
    byte[] chunk(long c) {
        if (chunkEmpty(c)) {
            return new byte[1 << clusterBits];
        }
        return chunks.get((int) c).clone();
    }

    void clear() {
        chunks.clear();
    }

    /** Entry {@code index} of a refcount block of width {@code 2^order} bits. */
    static long decode(byte[] block, long index, int order) {
        int bits = 1 << order;
        if (bits >= 8) {
            int at = (int) (index * (bits / 8));
            long v = 0;
            for (int k = 0; k < bits / 8; k++) {
                v = v << 8 | Byte.toUnsignedLong(block[at + k]);
            }
            return v;
        }
        long bit = index * bits;
        return (Byte.toUnsignedInt(block[(int) (bit >>> 3)]) >>> (bit & 7)) & ((1 << bits) - 1);
    }

    static void encode(byte[] block, long index, int order, long value) {
        int bits = 1 << order;
        if (bits >= 8) {
            int at = (int) (index * (bits / 8));
            for (int k = bits / 8 - 1; k >= 0; k--) {
                block[at + k] = (byte) value;
                value >>>= 8;
            }
            return;
        }
        long bit = index * bits;
        int at = (int) (bit >>> 3);
        int shift = (int) (bit & 7);
        int mask = ((1 << bits) - 1) << shift;
        block[at] = (byte) ((block[at] & ~mask) | (((int) value << shift) & mask));
    }
}
