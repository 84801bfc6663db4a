package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The internal snapshot table, read at open as QEMU reads it, so a damaged
 * table is refused up front. Reading the active layer never needs it; the
 * entries are kept for {@code info} and for the write side. Each entry is
 *
 * <pre>
 *   0  l1_table_offset (u64)   8  l1_size (u32)
 *  12  id_str_size (u16)      14  name_size (u16)
 *  16  date_sec (u32)         20  date_nsec (u32)
 *  24  vm_clock_nsec (u64)    32  vm_state_size (u32)
 *  36  extra_data_size (u32)  40  extra data: vm_state_size_large (u64),
 *                                 disk_size (u64), icount (u64), each optional
 *      then the id and the name (no NUL), the entry padded to 8 bytes
 * </pre>
 */
final class Qcow2Snapshots {
    private Qcow2Snapshots() {
    }

    /** QCOW_MAX_SNAPSHOT_EXTRA_DATA. */
    static final int MAX_EXTRA_DATA = 1024;
    /** QCOW_MAX_SNAPSHOTS_SIZE: 1 KiB for each of the most snapshots. */
    static final long MAX_TABLE_BYTES = 1024L * Qcow2Limits.MAX_SNAPSHOTS;
    /** The extra data QEMU 7.2 knows: vm_state_size_large, disk_size, icount. */
    static final int KNOWN_EXTRA = 24;

    /**
     * One entry. {@code unknownExtra} is the extra data past the 24 bytes
     * QEMU 7.2 knows, kept so a rewritten table carries it on as QEMU does;
     * {@code diskSize} and {@code icount} are -1 when the entry has none.
     */
    record Snapshot(String id, String name, long l1TableOffset, int l1Size, long dateSeconds, int dateNanos,
                    long vmClockNanos, long vmStateSize, long diskSize, long icount, int extraDataSize,
                    byte[] unknownExtra) {
        Snapshot(String id, String name, long l1TableOffset, int l1Size, long dateSeconds, int dateNanos,
                 long vmClockNanos, long vmStateSize, long diskSize, long icount) {
            this(id, name, l1TableOffset, l1Size, dateSeconds, dateNanos, vmClockNanos, vmStateSize, diskSize, icount,
                    KNOWN_EXTRA, new byte[0]);
        }

        /** The same entry with a disk size (for entries that had none). */
        Snapshot withDiskSize(long size) {
            return new Snapshot(id, name, l1TableOffset, l1Size, dateSeconds, dateNanos, vmClockNanos, vmStateSize,
                    size, icount, extraDataSize, unknownExtra);
        }
    }

    /**
     * A table as a repairing check reads it (QEMU's qcow2_do_read_snapshots
     * with repair): {@code dropped} snapshots were cut off the end because the
     * table was too big, and {@code extraTruncated} entries lost the extra
     * data over {@link #MAX_EXTRA_DATA}.
     */
    record Table(List<Snapshot> snapshots, int dropped, int extraTruncated) {
    }

    /** Reads the table the header names, refusing a damaged one with QEMU's messages. */
    static List<Snapshot> read(BlockNode file, long fileLength, Qcow2Header h) throws BlockException {
        return read(file, fileLength, h.snapshotsOffset(), h.snapshotCount(), false, false, line -> { }).snapshots();
    }

    /**
     * Reads {@code count} entries at {@code offset}. Without {@code repair} a
     * table too big or an entry with too much extra data is refused (EFBIG,
     * with the hint QEMU gives); with it, the entries past the size limit are
     * dropped and oversized extra data cut to its limit, each said on
     * {@code report} as QEMU's check says it. A check ({@code forCheck})
     * reads past the end of the file as zeroes, as QEMU does.
     */
    static Table read(BlockNode file, long fileLength, long offset, int count, boolean repair, boolean forCheck,
                      java.util.function.Consumer<String> report) throws BlockException {
        List<Snapshot> list = new ArrayList<>(Math.min(count, 1024));
        long at = offset;
        long tableLength = 0;
        int truncated = 0;
        for (int i = 0; i < count; i++) {
            tableLength = (tableLength + 7) & ~7L;
            at = (at + 7) & ~7L;
            ByteBuffer fixed = readEntryPart(file, fileLength, at, 40, i, forCheck);
            long l1 = fixed.getLong(0);
            int l1Size = fixed.getInt(8);
            int idSize = Short.toUnsignedInt(fixed.getShort(12));
            int nameSize = Short.toUnsignedInt(fixed.getShort(14));
            long dateSec = Integer.toUnsignedLong(fixed.getInt(16));
            int dateNsec = fixed.getInt(20);
            long vmClock = fixed.getLong(24);
            long vmState = Integer.toUnsignedLong(fixed.getInt(32));
            long extra = Integer.toUnsignedLong(fixed.getInt(36));
            long kept = extra;
            if (extra > MAX_EXTRA_DATA) {
                if (!repair) {
                    throw new BlockException(Errno.EFBIG, "Too much extra metadata in snapshot table entry " + i
                            + "\nYou can force-remove this extra metadata with qemu-img check -r all");
                }
                report.accept("Discarding too much extra metadata in snapshot table entry " + i + " (" + extra
                        + " > " + MAX_EXTRA_DATA + ")");
                truncated++;
                kept = MAX_EXTRA_DATA;
            }
            ByteBuffer ex = readEntryPart(file, fileLength, at + 40, (int) kept, i, forCheck);
            long textAt = at + 40 + extra;
            ByteBuffer texts = readEntryPart(file, fileLength, textAt, idSize + nameSize, i, forCheck);
            long diskSize = -1;
            long icount = -1;
            if (kept >= 8) {
                vmState = ex.getLong(0);
            }
            if (kept >= 16) {
                diskSize = ex.getLong(8);
            }
            if (kept >= 24) {
                icount = ex.getLong(16);
            }
            byte[] unknown = new byte[(int) Math.max(0, kept - KNOWN_EXTRA)];
            ex.get(KNOWN_EXTRA > kept ? 0 : KNOWN_EXTRA, unknown);
            String id = text(texts, 0, idSize);
            String name = text(texts, idSize, nameSize);
            long next = textAt + idSize + nameSize;
            tableLength += 40 + kept + idSize + nameSize;
            if (tableLength > MAX_TABLE_BYTES || next - offset > Integer.MAX_VALUE) {
                if (!repair) {
                    throw new BlockException(Errno.EFBIG, "Snapshot table is too big\nYou can force-remove all "
                            + (count - i) + " overhanging snapshots with qemu-img check -r all");
                }
                report.accept("Discarding " + (count - i) + " overhanging snapshots (snapshot table is too big)");
                return new Table(List.copyOf(list), count - i, truncated);
            }
            list.add(new Snapshot(id, name, l1, l1Size, dateSec, dateNsec, vmClock, vmState, diskSize, icount,
                    (int) kept, unknown));
            at = next;
        }
        return new Table(List.copyOf(list), 0, truncated);
    }

    /**
     * {@code n} bytes of entry {@code index}. Past the end of the file they
     * are refused, except for a check ({@code zeroPastEnd}), which
     * reads them as zeroes, as QEMU reads a file there: the table is then cut
     * to what the file holds instead of being lost. Either way nothing is
     * read outside the file, and an entry is at most 40 bytes, 1 KiB of extra
     * data and two 64 KiB strings.
     */
    private static ByteBuffer readEntryPart(BlockNode file, long fileLength, long at, int n, int index,
                                            boolean zeroPastEnd) throws BlockException {
        if (zeroPastEnd) {
            ByteBuffer b = ByteBuffer.allocate(n);
            long have = Math.max(0, Math.min(n, fileLength - at));
            if (have > 0) {
                file.read(at, b.limit((int) have));
            }
            return b.clear();
        }
        if (at > fileLength - n) {
            throw new BlockException.Corrupt("Snapshot table entry " + index + " runs past the end of the image file"
                    + " (offset " + Qcow2ClusterMap.hex(at) + ", " + n + " bytes, file length " + fileLength + ")");
        }
        ByteBuffer b = ByteBuffer.allocate(n);
        if (n > 0) {
            file.read(at, b);
        }
        return b.clear();
    }

    /** A C string: the bytes up to the first NUL, as QEMU reads and then uses an id or a name. */
    private static String text(ByteBuffer b, int at, int n) {
        byte[] bytes = new byte[n];
        b.get(at, bytes);
        int len = 0;
        while (len < n && bytes[len] != 0) {
            len++;
        }
        return new String(bytes, 0, len, StandardCharsets.UTF_8);
    }
}
