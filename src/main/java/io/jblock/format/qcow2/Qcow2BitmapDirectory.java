package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The bitmap directory (docs/interop/qcow2.txt, "Bitmap directory"): one
 * entry per persistent dirty bitmap, each padded to a multiple of 8 bytes.
 *
 * <pre>
 *   0  bitmap_table_offset (u64)     8  bitmap_table_size (u32, entries)
 *  12  flags (u32): bit 0 in_use, bit 1 auto, bit 2 extra_data_compatible, others reserved
 *  16  type (u8, 1 = dirty tracking)     17  granularity_bits (u8)
 *  18  name_size (u16)     20  extra_data_size (u32)
 *  24  extra data, then the name (no NUL), then padding to 8
 * </pre>
 *
 * The checks and messages are QEMU 7.2's (bitmap_list_load, check_dir_entry).
 */
final class Qcow2BitmapDirectory {
    static final int ENTRY_HEADER = 24;
    static final int FLAG_IN_USE = 1;
    static final int FLAG_AUTO = 1 << 1;
    /** QEMU's BME_RESERVED_FLAGS: it knows in_use and auto, and refuses even extra_data_compatible. */
    static final int RESERVED_FLAGS = 0xfffffffc;
    static final int TYPE_DIRTY_TRACKING = 1;
    static final int MIN_GRANULARITY_BITS = 9;
    static final int MAX_GRANULARITY_BITS = 31;
    /** BME_MAX_NAME_SIZE. */
    static final int MAX_NAME_BYTES = 1023;
    /** BME_MAX_TABLE_SIZE: bitmap table entries. */
    static final long MAX_TABLE_SIZE = 0x8000000L;
    /** BME_MAX_PHYS_SIZE: 512 MiB of bitmap data, the most one bitmap may take in memory. */
    static final long MAX_PHYS_SIZE = 0x20000000L;

    /** One directory entry, as stored (the name decoded as UTF-8, as QEMU keeps the bytes). */
    record Entry(long tableOffset, int tableSize, int flags, int type, int granularityBits, String name) {
        boolean inUse() {
            return (flags & FLAG_IN_USE) != 0;
        }

        boolean auto() {
            return (flags & FLAG_AUTO) != 0;
        }

        Entry withFlags(int newFlags) {
            return new Entry(tableOffset, tableSize, newFlags, type, granularityBits, name);
        }

        Entry withTable(long offset, int size) {
            return new Entry(offset, size, flags, type, granularityBits, name);
        }
    }

    private Qcow2BitmapDirectory() {
    }

    static int entrySize(int nameBytes, long extraBytes) {
        return (int) ((ENTRY_HEADER + nameBytes + extraBytes + 7) & ~7L);
    }

    static int nameBytes(String name) {
        return name.getBytes(StandardCharsets.UTF_8).length;
    }

    /** The directory's size in bytes for these entries. */
    static long size(List<Entry> entries) {
        long n = 0;
        for (Entry e : entries) {
            n += entrySize(nameBytes(e.name()), 0);
        }
        return n;
    }

    /**
     * Reads and checks the directory the extension points at, as QEMU's
     * bitmap_list_load: every failure is {@link BlockException.Corrupt} with
     * QEMU's message. {@code imageSize} is the virtual size.
     */
    static List<Entry> load(BlockNode file, long fileLength, Qcow2Extensions.Bitmaps ext, long clusterSize,
                            long imageSize) throws BlockException {
        long size = ext.directorySize();
        if (size == 0) {
            throw new BlockException.Corrupt("Requested bitmap directory size is zero");
        }
        if (size > Qcow2Extensions.Bitmaps.MAX_DIRECTORY_SIZE) {
            throw new BlockException.Corrupt("Requested bitmap directory size is too big");
        }
        ByteBuffer dir = ByteBuffer.allocate((int) size);
        // As QEMU, bytes past the end of the file read as zeroes (and then fail the checks below).
        if (ext.directoryOffset() < 0) {
            throw new BlockException.Corrupt("Failed to read bitmap directory: " + Errno.EIO.text());
        }
        long inFile = Math.max(0, Math.min(size, fileLength - ext.directoryOffset()));
        if (inFile > 0) {
            file.read(ext.directoryOffset(), dir.limit((int) inFile));
        }
        dir.clear();
        List<Entry> out = new ArrayList<>();
        int at = 0;
        while (at < size) {
            if (at + ENTRY_HEADER > size) {
                throw new BlockException.Corrupt("Broken bitmap directory");
            }
            if (out.size() + 1 > ext.count()) {
                throw new BlockException.Corrupt("More bitmaps found than specified in header extension");
            }
            long tableOffset = dir.getLong(at);
            int tableSize = dir.getInt(at + 8);
            int flags = dir.getInt(at + 12);
            int type = Byte.toUnsignedInt(dir.get(at + 16));
            int granularityBits = Byte.toUnsignedInt(dir.get(at + 17));
            int nameSize = Short.toUnsignedInt(dir.getShort(at + 18));
            long extra = Integer.toUnsignedLong(dir.getInt(at + 20));
            long next = at + (long) entrySize(nameSize, extra);
            if (next > size) {
                throw new BlockException.Corrupt("Broken bitmap directory");
            }
            if (extra != 0) {
                throw new BlockException.Corrupt("Bitmap extra data is not supported");
            }
            byte[] nameBytes = new byte[nameSize];
            dir.get(at + ENTRY_HEADER, nameBytes);
            String name = new String(nameBytes, StandardCharsets.UTF_8);
            Entry e = new Entry(tableOffset, tableSize, flags, type, granularityBits, name);
            if (!valid(e, nameSize, clusterSize, imageSize)) {
                throw new BlockException.Corrupt("Bitmap '" + name + "' doesn't satisfy the constraints");
            }
            out.add(e);
            at = (int) next;
        }
        if (out.size() != ext.count()) {
            throw new BlockException.Corrupt("Less bitmaps found than specified in header extension");
        }
        return List.copyOf(out);
    }

    /** QEMU's check_dir_entry. */
    static boolean valid(Entry e, int nameSize, long clusterSize, long imageSize) {
        long tableSize = Integer.toUnsignedLong(e.tableSize());
        boolean fail = tableSize == 0 || e.tableOffset() == 0 || (e.tableOffset() & (clusterSize - 1)) != 0
                || tableSize > MAX_TABLE_SIZE || e.granularityBits() > MAX_GRANULARITY_BITS
                || e.granularityBits() < MIN_GRANULARITY_BITS || (e.flags() & RESERVED_FLAGS) != 0
                || nameSize > MAX_NAME_BYTES || e.type() != TYPE_DIRTY_TRACKING;
        if (fail) {
            return false;
        }
        long phys = tableSize * clusterSize;
        if (phys > MAX_PHYS_SIZE) {
            return false;
        }
        // A bitmap that is not in use must cover the whole image (one left in use after a resize may not).
        return e.inUse() || imageSize <= ((phys * 8) << e.granularityBits());
    }

    /** The directory bytes for {@code entries} (no extra data), each entry padded with zeroes. */
    static ByteBuffer encode(List<Entry> entries) {
        ByteBuffer b = ByteBuffer.allocate((int) size(entries));
        int at = 0;
        for (Entry e : entries) {
            byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
            b.putLong(at, e.tableOffset());
            b.putInt(at + 8, e.tableSize());
            b.putInt(at + 12, e.flags());
            b.put(at + 16, (byte) TYPE_DIRTY_TRACKING);
            b.put(at + 17, (byte) e.granularityBits());
            b.putShort(at + 18, (short) name.length);
            b.putInt(at + 20, 0);
            b.put(at + ENTRY_HEADER, name);
            at += entrySize(name.length, 0);
        }
        return b;
    }

    /**
     * A bitmap table (one u64 per cluster of bitmap data), checked as QEMU's
     * bitmap_table_load does: an entry is 0 (all zeroes), 1 (all ones) or
     * the offset of a data cluster; anything else is EINVAL.
     * <pre>
     *   bit 0: all ones (only with offset 0)   bits 1-8, 56-63: reserved   bits 9-55: cluster offset
     * </pre>
     */
    static long[] loadTable(BlockNode file, long fileLength, Entry e, long clusterSize) throws BlockException {
        long bytes = Integer.toUnsignedLong(e.tableSize()) * 8;
        if (e.tableOffset() < 0) {
            throw new BlockException(Errno.EIO, Errno.EIO.text()); // QEMU's read there fails so
        }
        ByteBuffer b = ByteBuffer.allocate((int) bytes);
        // As QEMU, a table past the end of the file reads as zeroes (all clean); nothing outside it is read.
        long inFile = Math.max(0, Math.min(bytes, fileLength - e.tableOffset()));
        if (inFile > 0) {
            file.read(e.tableOffset(), b.limit((int) inFile));
        }
        b.clear();
        long[] table = new long[e.tableSize()];
        for (int i = 0; i < table.length; i++) {
            table[i] = b.getLong(i * 8);
            if (!validTableEntry(table[i], clusterSize)) {
                throw new BlockException(Errno.EINVAL, Errno.EINVAL.text());
            }
        }
        return table;
    }

    static final long TABLE_RESERVED = 0xff000000000001feL;
    static final long TABLE_OFFSET = 0x00fffffffffffe00L;
    static final long TABLE_ALL_ONES = 1;

    static boolean validTableEntry(long entry, long clusterSize) {
        if ((entry & TABLE_RESERVED) != 0) {
            return false;
        }
        long offset = entry & TABLE_OFFSET;
        return offset == 0 || ((entry & TABLE_ALL_ONES) == 0 && (offset & (clusterSize - 1)) == 0);
    }
}
