package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Errno;

import java.util.Map;

/**
 * How large a qcow2 image would be ({@code qemu-img measure -O qcow2}), as
 * QEMU 7.2's qcow2_measure computes it: "fully allocated" is the header, the
 * L2 and L1 tables for the whole size, the data, and refcount blocks and
 * table for all of them (the fixed point of {@link Qcow2CreateLayout#refcountMetadata});
 * "required" is the same with only the clusters that hold data in the
 * input image (every cluster when the new image would have a backing file,
 * or with falloc/full preallocation).
 */
public final class Qcow2Measure {
    private static final long MAX_L1_BYTES = 0x0200_0000L;

    private Qcow2Measure() {
    }

    /**
     * @param required        bytes the image needs
     * @param fullyAllocated  bytes it needs with every cluster allocated
     * @param bitmaps         bytes for the input's persistent bitmaps, or -1 when not shown
     */
    public record Result(long required, long fullyAllocated, long bitmaps) {
    }

    /**
     * @param options qcow2's {@code -o} options by name (as for creation)
     * @param size    the virtual size when there is no input
     * @param input   the image to convert, or null
     */
    public static Result measure(Map<String, String> options, long size, BlockNode input) throws BlockException {
        // Encryption is looked at first; jblock has no secrets, so it ends here as qemu-img without one.
        if (options.containsKey("encrypt.format") || "on".equals(options.get("encryption"))) {
            String secret = options.get("encrypt.key-secret");
            throw invalid(secret == null ? "Parameter 'encrypt.key-secret' is required for cipher"
                    : "No secret with id '" + secret + "'");
        }
        boolean extendedL2 = "on".equals(options.get("extended_l2"));
        long clusterSize = options.containsKey("cluster_size") ? Long.parseUnsignedLong(options.get("cluster_size"))
                : 65536;
        int clusterBits = Long.numberOfTrailingZeros(clusterSize);
        if (clusterSize == 0 || Long.bitCount(clusterSize) != 1 || clusterBits < Qcow2Header.MIN_CLUSTER_BITS
                || clusterBits > Qcow2Header.MAX_CLUSTER_BITS) {
            throw invalid("Cluster size must be a power of two between 512 and 2048k");
        }
        if (extendedL2 && clusterSize < 16384) {
            throw invalid("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
        }
        String compat = options.get("compat");
        int version = 3;
        if (compat != null) {
            version = switch (compat) {
                case "0.10" -> 2;
                case "1.1" -> 3;
                default -> throw invalid("Invalid compatibility level: '" + compat + "'");
            };
        }
        long refcountBits = options.containsKey("refcount_bits") ? Long.parseLong(options.get("refcount_bits")) : 16;
        if (Long.compareUnsigned(refcountBits, 64) > 0 || Long.bitCount(refcountBits) != 1) {
            throw invalid("Refcount width must be a power of two and may not exceed 64 bits");
        }
        if (version < 3 && refcountBits != 16) {
            throw invalid("Different refcount widths than 16 bits require compatibility level 1.1 or above "
                    + "(use compat=1.1 or greater)");
        }
        String prealloc = options.getOrDefault("preallocation", "off");
        if (!prealloc.equals("off") && !prealloc.equals("metadata") && !prealloc.equals("falloc")
                && !prealloc.equals("full")) {
            throw invalid("invalid parameter value: " + prealloc);
        }
        boolean hasBacking = options.containsKey("backing_file");
        long virtualSize = roundUp(size, clusterSize);
        int l2EntryBytes = extendedL2 ? 16 : 8;
        long l2Tables = ceilDiv(virtualSize / clusterSize, clusterSize / l2EntryBytes);
        if (l2Tables > MAX_L1_BYTES / 8) {
            throw invalid("The image size is too large (try using a larger cluster size)");
        }
        long required = 0;
        if (input != null) {
            long inputSize = input.length();
            virtualSize = roundUp(inputSize, clusterSize);
            required = hasBacking ? virtualSize : dataClusterBytes(input, inputSize, clusterSize);
        }
        if (prealloc.equals("full") || prealloc.equals("falloc")) {
            required = virtualSize;
        }
        long fully = preallocatedSize(virtualSize, clusterSize, Integer.numberOfTrailingZeros((int) refcountBits),
                extendedL2);
        long bitmaps = version >= 3 && input != null && supportsBitmaps(input)
                ? (input instanceof Qcow2Node q ? q.bitmaps().measure(clusterSize) : 0) : -1;
        return new Result(fully - virtualSize + required, fully, bitmaps);
    }

    /** QEMU's qcow2_calc_prealloc_size: every table and every cluster of a fully allocated image. */
    static long preallocatedSize(long size, long clusterSize, int refcountOrder, boolean extendedL2) {
        long aligned = roundUp(size, clusterSize);
        int l2EntryBytes = extendedL2 ? 16 : 8;
        long meta = clusterSize;
        long l2Entries = roundUp(aligned / clusterSize, clusterSize / l2EntryBytes);
        meta += l2Entries * l2EntryBytes;
        long l1Entries = roundUp(l2Entries * l2EntryBytes / clusterSize, clusterSize / 8);
        meta += l1Entries * 8;
        long[] refcounts = Qcow2CreateLayout.refcountMetadata((meta + aligned) / clusterSize, clusterSize,
                refcountOrder, false);
        meta += (refcounts[0] + refcounts[1]) * clusterSize;
        return meta + aligned;
    }

    /**
     * The clusters of the input that hold data, found by block status over
     * its whole chain: zero runs are skipped, a data run counts to the end
     * of its last cluster.
     */
    private static long dataClusterBytes(BlockNode input, long size, long clusterSize) throws BlockException {
        long required = 0;
        long pnum;
        for (long offset = 0; offset < size; offset += pnum) {
            BlockStatus s = input.blockStatus(offset, size - offset);
            pnum = s.length();
            if (s.isZero()) {
                continue;
            }
            if (s.isData()) {
                pnum = roundUp(offset + pnum, clusterSize) - offset;
                required += offset % clusterSize + pnum;
            }
        }
        return required;
    }

    /** Whether the input could carry persistent bitmaps over: a qcow2 version 3 image. */
    private static boolean supportsBitmaps(BlockNode input) throws BlockException {
        if (!input.driverName().equals("qcow2")) {
            return false;
        }
        return "1.1".equals(findCompat(input.info().formatSpecific()));
    }

    private static Object findCompat(Map<String, Object> m) {
        for (Map.Entry<String, Object> e : m.entrySet()) {
            if (e.getKey().equals("compat")) {
                return e.getValue();
            }
            if (e.getValue() instanceof Map<?, ?> inner) {
                @SuppressWarnings("unchecked")
                Object found = findCompat((Map<String, Object>) inner);
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
    }

    private static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static BlockException invalid(String message) {
        return new BlockException(Errno.EINVAL, message);
    }
}
