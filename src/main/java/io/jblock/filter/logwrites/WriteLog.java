package io.jblock.filter.logwrites;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The Linux dm-log-writes format, which QEMU's blklogwrites also writes. All
 * fields are little-endian; the log is cut in log sectors (512 bytes unless
 * told otherwise).
 *
 * <pre>
 * sector 0: superblock, zero-padded to the sector size
 *   0  u64 magic       0x6a736677736872 ("rhswfsj" read backwards)
 *   8  u64 version     1
 *  16  u64 nr_entries  entries the log holds (updated on flush and every N entries)
 *  24  u32 sectorsize
 *
 * sector 1..: entries, each one sector, then its data (writes only)
 *   0  u64 sector      first sector written, in log sectors
 *   8  u64 nr_sectors
 *  16  u64 flags       FLUSH 1, FUA 2, DISCARD 4, MARK 8, METADATA 16
 *  24  u64 data_len    0 (the data length is nr_sectors sectors)
 *   ... zero padding to the sector size, then nr_sectors sectors of data
 *       (a zero write logs zeroes; discards and flushes have no data)
 * </pre>
 */
public final class WriteLog {
    public static final long MAGIC = 0x6a736677736872L;
    public static final long VERSION = 1;
    public static final long FLUSH = 1;
    public static final long FUA = 2;
    public static final long DISCARD = 4;
    public static final long MARK = 8;
    public static final long METADATA = 16;
    /** The flags QEMU's blklogwrites accepts when it appends (METADATA is the kernel's, never written here). */
    static final long QEMU_FLAG_MASK = FLUSH | FUA | DISCARD | MARK;
    static final long ALL_FLAGS = QEMU_FLAG_MASK | METADATA;
    static final int SUPER_SIZE = 28;
    static final int ENTRY_SIZE = 32;
    /** QEMU's limit: a sector size below 2^24 and a power of two. */
    static final long MAX_SECTOR_SIZE = 1L << 24;

    private WriteLog() {
    }

    static boolean validSectorSize(long size) {
        return size > 0 && size < MAX_SECTOR_SIZE && Long.bitCount(size) == 1;
    }

    static ByteBuffer superblock(long entries, int sectorSize) {
        ByteBuffer b = ByteBuffer.allocate(sectorSize).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putLong(VERSION).putLong(entries).putInt(sectorSize);
        return b.clear();
    }

    static ByteBuffer entry(long sector, long sectors, long flags, int sectorSize) {
        ByteBuffer b = ByteBuffer.allocate(sectorSize).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(sector).putLong(sectors).putLong(flags).putLong(0);
        return b.clear();
    }

    /** A log read back whole: its sector size and entries. */
    public record Contents(int sectorSize, List<LogEntry> entries) {
    }

    /**
     * Reads the log at {@code path}: the superblock, then the entries it
     * counts. Fails naming the problem: not a log (bad magic), a version
     * other than 1, a bad sector size, an entry or its data past the end of
     * the file, unknown flags.
     */
    public static Contents read(Path path) throws BlockException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer sb = ByteBuffer.allocate(SUPER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, sb, 0);
            if (sb.position() < SUPER_SIZE) {
                throw new BlockException(Errno.EINVAL, "'" + path + "' is not a write log: it is " + size
                        + " bytes long, shorter than a log superblock (" + SUPER_SIZE + " bytes)");
            }
            sb.flip();
            long magic = sb.getLong();
            long version = sb.getLong();
            long count = sb.getLong();
            long sectorSize = Integer.toUnsignedLong(sb.getInt());
            if (magic != MAGIC) {
                throw new BlockException(Errno.EINVAL, "'" + path + "' is not a write log: bad magic 0x"
                        + Long.toHexString(magic) + " (expected 0x" + Long.toHexString(MAGIC) + ")");
            }
            if (version != VERSION) {
                throw new BlockException(Errno.EINVAL, "Unsupported log version " + Long.toUnsignedString(version)
                        + " in '" + path + "'");
            }
            if (!validSectorSize(sectorSize)) {
                throw new BlockException(Errno.EINVAL, "Invalid log sector size " + sectorSize + " in '" + path + "'");
            }
            int bits = Long.numberOfTrailingZeros(sectorSize);
            if (Long.compareUnsigned(count, size >>> bits) > 0) {
                throw new BlockException(Errno.EINVAL, "'" + path + "' is truncated or corrupt: it claims " + Long.toUnsignedString(count)
                        + " entries, more than its " + size + " bytes can hold");
            }
            List<LogEntry> entries = new ArrayList<>((int) count);
            long at = sectorSize;
            ByteBuffer e = ByteBuffer.allocate(ENTRY_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            for (long i = 0; i < count; i++) {
                e.clear();
                readFully(ch, e, at);
                if (e.position() < ENTRY_SIZE) {
                    throw new BlockException(Errno.EINVAL, "'" + path + "' is truncated: entry " + i + " of " + count
                            + " at offset " + at + " is past the end of the file (" + size + " bytes)");
                }
                e.flip();
                long sector = e.getLong();
                long sectors = e.getLong();
                long flags = e.getLong();
                if ((flags & ~ALL_FLAGS) != 0) {
                    throw new BlockException(Errno.EINVAL, "Invalid flags 0x" + Long.toHexString(flags)
                            + " in log entry " + i + " of '" + path + "'");
                }
                if (sectors < 0 || sectors > (Long.MAX_VALUE >>> bits) || sector < 0 || sector > (Long.MAX_VALUE >>> bits)) {
                    throw new BlockException(Errno.EINVAL, "log entry " + i + " of '" + path + "' is out of range: sector "
                            + Long.toUnsignedString(sector) + ", " + Long.toUnsignedString(sectors) + " sectors");
                }
                at += sectorSize;
                // As QEMU's reader: every entry but a discard is followed by nr_sectors sectors (0 for a flush).
                boolean hasData = (flags & DISCARD) == 0;
                long dataOffset = -1;
                if (hasData) {
                    dataOffset = at;
                    long dataLen = sectors << bits;
                    if (at > size || dataLen > size - at) {
                        throw new BlockException(Errno.EINVAL, "'" + path + "' is truncated: the data of entry " + i
                                + " (" + dataLen + " bytes at offset " + at + ") is past the end of the file ("
                                + size + " bytes)");
                    }
                    at += dataLen;
                }
                entries.add(new LogEntry(i, sector, sectors, flags, dataOffset));
            }
            return new Contents((int) sectorSize, entries);
        } catch (IOException ex) {
            throw BlockException.io("Could not read write log '" + path + "'", ex);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, at + b.position());
            if (n < 0) {
                return;
            }
        }
    }
}
