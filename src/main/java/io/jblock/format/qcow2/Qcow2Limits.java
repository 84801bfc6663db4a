package io.jblock.format.qcow2;

import io.jblock.block.BlockException;

/**
 * The limits QEMU 7.2 puts on an untrusted image's tables before it allocates
 * or reads anything they describe, with its messages; and one more of
 * jblock's own: every table must lie inside the image file, so a hostile
 * header can never make jblock read outside it.
 */
final class Qcow2Limits {
    private Qcow2Limits() {
    }

    /** 32 MiB of active L1 table: enough for a 2 EiB disk at 2 MiB clusters (QCOW_MAX_L1_SIZE). */
    static final long MAX_L1_BYTES = 32L << 20;
    /** 8 MiB of refcount table: enough for 2 PB images at 64k clusters (QCOW_MAX_REFTABLE_SIZE). */
    static final long MAX_REFTABLE_BYTES = 8L << 20;
    /** QCOW_MAX_SNAPSHOTS: 65536 snapshots. */
    static final long MAX_SNAPSHOTS = 65536;
    /** The smallest snapshot table entry (fixed part, no id, name or extra data): 40 bytes. */
    static final long SNAPSHOT_HEADER_SIZE = 40;
    /** QEMU keeps the backing file name in a 1024-byte buffer with its NUL. */
    static final int MAX_BACKING_NAME = 1023;
    /** How many backing files one chain may have below its top. */
    static final int MAX_CHAIN_DEPTH = 64;

    static void check(Qcow2Header h, long fileLength) throws BlockException {
        check(h, fileLength, false);
    }

    /**
     * As QEMU's qcow2_do_open checks the header; {@code checkMode} is its
     * BDRV_O_CHECK (qemu-img check), which leaves the snapshot table to the
     * check, so that a damaged one can be reported and repaired.
     */
    static void check(Qcow2Header h, long fileLength, boolean checkMode) throws BlockException {
        Qcow2Geometry g = Qcow2Geometry.of(h);
        long cs = h.clusterSize();
        if (h.hasExtendedL2() && g.subclusterSize() < 512) {
            // A subcluster is the smallest unit of I/O QEMU tracks; below a sector it would be meaningless.
            throw new BlockException.Unsupported("Unsupported subcluster size: " + g.subclusterSize());
        }
        long l1Needed = h.size() < 0 ? Long.MAX_VALUE : ceilDiv(h.size(), g.l1Span());
        if (l1Needed > Integer.MAX_VALUE) {
            throw new BlockException.Corrupt("Image is too big");
        }

        long refBytes = Integer.toUnsignedLong(h.refcountTableClusters()) * cs;
        if (Integer.toUnsignedLong(h.refcountTableClusters()) > MAX_REFTABLE_BYTES / cs) {
            throw new BlockException.Corrupt("Reference count table too large");
        }
        if (h.refcountTableClusters() == 0) {
            throw new BlockException.Corrupt("Image does not contain a reference count table");
        }
        table(h.refcountTableOffset(), refBytes, cs, fileLength, "Reference count table offset invalid");

        long snapshots = Integer.toUnsignedLong(h.snapshotCount());
        if (checkMode) {
            snapshots = 0;
        }
        if (snapshots > MAX_SNAPSHOTS) {
            throw new BlockException.Corrupt("Snapshot table too large");
        }
        if (snapshots > 0) {
            table(h.snapshotsOffset(), snapshots * SNAPSHOT_HEADER_SIZE, cs, fileLength,
                    "Snapshot table offset invalid");
        } else if (!checkMode) {
            // QEMU validates the offset even with no snapshots (not its end: an empty table has none).
            table(h.snapshotsOffset(), 0, cs, Long.MAX_VALUE, "Snapshot table offset invalid");
        }

        long l1Size = Integer.toUnsignedLong(h.l1Size());
        if (l1Size > MAX_L1_BYTES / 8) {
            throw new BlockException.Corrupt("Active L1 table too large");
        }
        if (l1Size < l1Needed) {
            throw new BlockException.Corrupt("L1 table is too small");
        }
        if (l1Size > 0) {
            table(h.l1TableOffset(), l1Size * 8, cs, fileLength, "Active L1 table offset invalid");
        }
    }

    /**
     * QEMU's validate_table_offset (aligned to a cluster, no overflow), then
     * jblock's: the whole table inside the file.
     */
    private static void table(long offset, long bytes, long clusterSize, long fileLength, String message)
            throws BlockException {
        if ((offset & (clusterSize - 1)) != 0 || offset < 0 || offset > Long.MAX_VALUE - bytes) {
            throw new BlockException.Corrupt(message);
        }
        if (offset + bytes > fileLength) {
            throw new BlockException.Corrupt(message + ": 0x" + Long.toHexString(offset) + " + " + bytes
                    + " bytes is past the end of the image file (length " + fileLength + ")");
        }
    }

    private static long ceilDiv(long a, long b) {
        return a / b + (a % b != 0 ? 1 : 0);
    }
}
