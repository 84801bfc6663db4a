package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

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

    record Snapshot(String id, String name, long l1TableOffset, int l1Size, long dateSeconds, int dateNanos,
                    long vmClockNanos, long vmStateSize, long diskSize, long icount) {
    }

    static List<Snapshot> read(BlockNode file, long fileLength, Qcow2Header h) throws BlockException {
        int count = h.snapshotCount();
        List<Snapshot> list = new ArrayList<>(Math.min(count, 1024));
        long at = h.snapshotsOffset();
        for (int i = 0; i < count; i++) {
            ByteBuffer fixed = readEntryPart(file, fileLength, at, 40, i);
            long l1 = fixed.getLong(0);
            int l1Size = fixed.getInt(8);
            int idSize = Short.toUnsignedInt(fixed.getShort(12));
            int nameSize = Short.toUnsignedInt(fixed.getShort(14));
            long dateSec = Integer.toUnsignedLong(fixed.getInt(16));
            int dateNsec = fixed.getInt(20);
            long vmClock = fixed.getLong(24);
            long vmState = Integer.toUnsignedLong(fixed.getInt(32));
            long extra = Integer.toUnsignedLong(fixed.getInt(36));
            if (extra > MAX_EXTRA_DATA) {
                throw new BlockException.Corrupt("Too much extra metadata in snapshot table entry " + i
                        + "\nYou can force-remove this extra metadata with qemu-img check -r all");
            }
            ByteBuffer rest = readEntryPart(file, fileLength, at + 40, (int) extra + idSize + nameSize, i);
            long diskSize = -1;
            long icount = -1;
            if (extra >= 8) {
                vmState = rest.getLong(0);
            }
            if (extra >= 16) {
                diskSize = rest.getLong(8);
            }
            if (extra >= 24) {
                icount = rest.getLong(16);
            }
            String id = text(rest, (int) extra, idSize);
            String name = text(rest, (int) extra + idSize, nameSize);
            list.add(new Snapshot(id, name, l1, l1Size, dateSec, dateNsec, vmClock, vmState, diskSize, icount));
            at += (40 + extra + idSize + nameSize + 7) & ~7L;
            if (at - h.snapshotsOffset() > MAX_TABLE_BYTES) {
                throw new BlockException.Corrupt("Snapshot table exceeds the size limit of " + MAX_TABLE_BYTES
                        + " bytes (at entry " + i + ")");
            }
        }
        return List.copyOf(list);
    }

    private static ByteBuffer readEntryPart(BlockNode file, long fileLength, long at, int n, int index)
            throws BlockException {
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

    private static String text(ByteBuffer b, int at, int n) {
        byte[] bytes = new byte[n];
        b.get(at, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
