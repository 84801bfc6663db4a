package io.jblock.filter.logwrites;

import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * {@code driver=blklogwrites} (QEMU's name for the logwrites filter):
 * children {@code file} and {@code log}; options {@code log-sector-size}
 * (default 512), {@code log-append} (continue an existing log) and
 * {@code log-super-update-interval} (default 4096), with QEMU 7.2's messages.
 */
public final class LogWritesDriver implements BlockDriver {
    private static final long DEFAULT_SECTOR_SIZE = 512;
    private static final long DEFAULT_SUPER_INTERVAL = 4096;
    private final String name;

    public LogWritesDriver() {
        this.name = "blklogwrites";
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public boolean isProtocol() {
        return false;
    }

    @Override
    public BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException {
        boolean append = options.takeBool("log-append").orElse(false);
        Long sectorOption = options.takeUnsigned("log-sector-size").orElse(null);
        long interval = options.takeUnsigned("log-super-update-interval").orElse(DEFAULT_SUPER_INTERVAL);
        BlockNode file = context.openChild("file", options, settings);
        if (file == null) {
            throw new BlockException(Errno.EINVAL, "A block device must be specified for \"file\"");
        }
        BlockNode log = null;
        try {
            log = context.openChild("log", options, settings);
            if (log == null) {
                throw new BlockException(Errno.EINVAL, "A block device must be specified for \"log\"");
            }
            long sectorSize;
            long nextSector = 1;
            long entries = 0;
            if (append) {
                if (sectorOption != null) {
                    throw new BlockException(Errno.EINVAL, "log-append and log-sector-size are mutually exclusive");
                }
                long[] found = existing(log);
                sectorSize = found[0];
                if (WriteLog.validSectorSize(sectorSize)) {
                    nextSector = found[1];
                    entries = found[2];
                }
            } else {
                sectorSize = sectorOption != null ? sectorOption : DEFAULT_SECTOR_SIZE;
            }
            if (!WriteLog.validSectorSize(sectorSize)) {
                throw new BlockException(Errno.EINVAL, "Invalid log sector size " + Long.toUnsignedString(sectorSize));
            }
            if (interval == 0) {
                throw new BlockException(Errno.EINVAL, "Invalid log superblock update interval 0");
            }
            return new LogWritesNode(name, settings, file, log, (int) sectorSize, nextSector, entries, interval);
        } catch (BlockException e) {
            file.close();
            if (log != null) {
                log.close();
            }
            throw e;
        }
    }

    /** {sector size, next free sector, entries} of the log to append to; an empty log is a new one. */
    private static long[] existing(BlockNode log) throws BlockException {
        if (log.length() == 0) {
            return new long[] {512, 1, 0};
        }
        ByteBuffer sb = ByteBuffer.allocate(WriteLog.SUPER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        if (log.length() < WriteLog.SUPER_SIZE) {
            throw new BlockException(Errno.EINVAL, "Invalid log superblock magic");
        }
        log.read(0, sb);
        sb.flip();
        long magic = sb.getLong();
        long version = sb.getLong();
        long count = sb.getLong();
        long sectorSize = Integer.toUnsignedLong(sb.getInt());
        if (magic != WriteLog.MAGIC) {
            throw new BlockException(Errno.EINVAL, "Invalid log superblock magic");
        }
        if (version != WriteLog.VERSION) {
            throw new BlockException(Errno.EINVAL, "Unsupported log version " + Long.toUnsignedString(version));
        }
        if (!WriteLog.validSectorSize(sectorSize)) {
            return new long[] {sectorSize, 1, 0};
        }
        int bits = Long.numberOfTrailingZeros(sectorSize);
        long sector = 1;
        ByteBuffer e = ByteBuffer.allocate(WriteLog.ENTRY_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < count; i++) {
            e.clear();
            long at = sector << bits;
            if (at + WriteLog.ENTRY_SIZE > log.length()) {
                throw new BlockException(Errno.EIO, "Failed to read log entry " + i + ": "
                        + "past the end of the log (" + log.length() + " bytes)");
            }
            log.read(at, e);
            long flags = e.getLong(16);
            if ((flags & ~WriteLog.QEMU_FLAG_MASK) != 0) {
                throw new BlockException(Errno.EINVAL, "Invalid flags 0x" + Long.toHexString(flags) + " in log entry " + i);
            }
            sector++;
            if ((flags & WriteLog.DISCARD) == 0) {
                sector += e.getLong(8);
            }
        }
        return new long[] {sectorSize, sector, count};
    }
}
