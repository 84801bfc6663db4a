package io.jblock.format.qcow2;

/**
 * Decoding of L1 and L2 entries (docs/interop/qcow2.txt, "Cluster mapping").
 *
 * <pre>
 * L1 entry:   63 COPIED | 62..56 reserved | 55..9 L2 table offset | 8..0 reserved
 *
 * L2 entry (standard cluster):
 *             63 COPIED | 62 COMPRESSED=0 | 61..56 reserved | 55..9 host offset | 8..1 reserved | 0 ZERO (v3)
 * L2 entry (compressed cluster), x = 62 - (cluster_bits - 8):
 *             63 COPIED=0 | 62 COMPRESSED=1 | 61..x additional 512-byte sectors | x-1..0 host offset
 *
 * Extended L2 entry: the 64 bits above (bit 0 reserved), then a 64-bit bitmap
 * for the 32 subclusters of the cluster:
 *             63..32 "reads as zero" bits | 31..0 "allocated" bits (bit n = subcluster n)
 * </pre>
 */
final class Qcow2L2Entry {
    private Qcow2L2Entry() {
    }

    static final long COPIED = 1L << 63;
    static final long COMPRESSED = 1L << 62;
    static final long ZERO = 1L;
    static final long OFFSET_MASK = 0x00fffffffffffe00L;

    /** What a subcluster (a whole cluster without extended L2) reads as, QEMU's QCow2SubclusterType. */
    enum Type {
        /** Data at a host offset in this image (or its data file). */
        NORMAL,
        /** A whole compressed cluster. */
        COMPRESSED,
        /** Reads as zero; no host cluster. */
        ZERO_PLAIN,
        /** Reads as zero; a host cluster is reserved for it. */
        ZERO_ALLOC,
        /** Not in this image: from the backing file, or zero without one. */
        UNALLOCATED_PLAIN,
        /** Not in this image although a host cluster is reserved (extended L2 only). */
        UNALLOCATED_ALLOC,
        /** The entry contradicts itself: the image is corrupt. */
        INVALID;

        boolean readsFromBacking() {
            return this == UNALLOCATED_PLAIN || this == UNALLOCATED_ALLOC;
        }

        boolean isZero() {
            return this == ZERO_PLAIN || this == ZERO_ALLOC;
        }
    }

    /**
     * The type of subcluster {@code sc} (0 without extended L2) of an entry.
     *
     * @param externalData the image keeps its data in an external data file,
     *                     where host offset 0 is a real offset (marked by COPIED)
     */
    static Type type(long entry, long bitmap, int sc, boolean extended, boolean externalData) {
        if ((entry & COMPRESSED) != 0) {
            return Type.COMPRESSED;
        }
        boolean hasHost = (entry & OFFSET_MASK) != 0 || (externalData && (entry & COPIED) != 0);
        if (!extended) {
            if ((entry & ZERO) != 0) {
                return hasHost ? Type.ZERO_ALLOC : Type.ZERO_PLAIN;
            }
            return hasHost ? Type.NORMAL : Type.UNALLOCATED_PLAIN;
        }
        long alloc = bitmap & 0xffffffffL;
        long zero = bitmap >>> 32;
        if ((alloc & zero) != 0) {
            return Type.INVALID;
        }
        boolean scAlloc = (alloc >>> sc & 1) != 0;
        boolean scZero = (zero >>> sc & 1) != 0;
        if (hasHost) {
            return scAlloc ? Type.NORMAL : scZero ? Type.ZERO_ALLOC : Type.UNALLOCATED_ALLOC;
        }
        if (alloc != 0) {
            return Type.INVALID;
        }
        return scZero ? Type.ZERO_PLAIN : Type.UNALLOCATED_PLAIN;
    }

    /** Where a compressed cluster's bytes start in the file. */
    static long compressedOffset(long entry, int clusterBits) {
        int shift = 62 - (clusterBits - 8);
        return entry & ((1L << shift) - 1);
    }

    /**
     * How many bytes a compressed cluster's data may take: the sectors the entry
     * counts, less the part of the first sector before the data starts.
     */
    static int compressedSize(long entry, int clusterBits) {
        int shift = 62 - (clusterBits - 8);
        long sectors = ((entry >>> shift) & ((1L << (clusterBits - 8)) - 1)) + 1;
        return (int) (sectors * 512 - (compressedOffset(entry, clusterBits) & 511));
    }
}
