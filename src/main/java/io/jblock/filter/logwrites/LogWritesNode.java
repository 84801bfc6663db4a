package io.jblock.filter.logwrites;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * {@code driver=blklogwrites}, the logwrites filter: passes every request
 * to its "file" child and records each write, zero write, discard and flush
 * to disk in its "log" child, in the dm-log-writes format ({@link WriteLog}),
 * as QEMU's blklogwrites does: the request goes to the file first, and is
 * logged once it completed, so the log is the order in which requests
 * reached the file node.
 *
 * <p>Where QEMU loses information, jblock keeps it: a write with FUA is
 * logged with the FUA flag (QEMU logs flags 0, so a replay cannot tell that
 * the write was durable on its own). Everything else is byte for byte what
 * QEMU writes, including zero writes logged with zeroed data, discards with
 * none, and the superblock rewritten on every flush (then the log is
 * flushed) and every {@code log-super-update-interval} entries.
 *
 * <p>A request that failed on the file is not logged (QEMU logs it as if it
 * had succeeded, though its data may never have reached the disk).
 *
 * <p>The log sits below any format, so it sees what the format sends to its
 * file: under cache=unsafe flushes never reach it (the node has no-flush),
 * which is exactly what a power cut punishes.
 *
 * <p>Thread safety: requests to the file run in parallel; appending to the
 * log is serialised by one lock, so entries never interleave.
 */
public final class LogWritesNode extends BlockNode {
    private final BlockNode file;
    private final BlockNode log;
    private final int sectorSize;
    private final int sectorBits;
    private final long superInterval;
    private final ReentrantLock logLock = new ReentrantLock();
    /** Read-modify-writes of partial sectors exclude every other change; whole-sector changes share it. */
    private final ReentrantReadWriteLock rmw = new ReentrantReadWriteLock();
    /** Guarded by logLock. */
    private long nextSector;
    /** Guarded by logLock. */
    private long entries;

    LogWritesNode(String driver, NodeSettings settings, BlockNode file, BlockNode log, int sectorSize,
                  long nextSector, long entries, long superInterval) {
        super(driver, settings);
        this.file = file;
        this.log = log;
        this.sectorSize = sectorSize;
        this.sectorBits = Integer.numberOfTrailingZeros(sectorSize);
        this.nextSector = nextSector;
        this.entries = entries;
        this.superInterval = superInterval;
    }

    /** Entries logged so far (including those of an appended log). */
    public long entryCount() {
        logLock.lock();
        try {
            return entries;
        } finally {
            logLock.unlock();
        }
    }

    @Override
    public List<BlockChild> children() {
        return List.of(new BlockChild("file", file), new BlockChild("log", log));
    }

    /**
     * FUA is taken (and passed down) so it can be logged. Requests of any
     * alignment are taken: partial log sectors are padded here.
     */
    @Override
    public Capabilities capabilities() {
        Capabilities c = file.capabilities();
        int align = c.requestAlignment();
        return new Capabilities(true, c.fastZero(), c.discard(), align, Math.max(align, c.maxTransfer()));
    }

    @Override
    public long length() throws BlockException {
        return file.length();
    }

    @Override
    public long allocatedSize() throws BlockException {
        return file.allocatedSize();
    }

    @Override
    public NodeInfo info() {
        return NodeInfo.simple(driverName());
    }

    @Override
    protected void doRead(long offset, ByteBuffer dst) throws BlockException {
        file.read(offset, dst);
    }

    @Override
    protected void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        if (aligned(offset) && aligned(src.remaining())) {
            rmw.readLock().lock();
            try {
                writeAligned(offset, src, flags);
            } finally {
                rmw.readLock().unlock();
            }
            return;
        }
        // Log entries are in whole sectors: read the sectors around the request, patch, write them whole,
        // as QEMU's block layer pads a request to the node's alignment.
        long start = offset & -sectorSize;
        long end = (offset + src.remaining() + sectorSize - 1) & -sectorSize;
        rmw.writeLock().lock();
        try {
            ByteBuffer whole = ByteBuffer.allocate((int) (end - start));
            file.read(start, whole);
            whole.position((int) (offset - start));
            whole.put(src.duplicate());
            whole.clear();
            writeAligned(start, whole, flags);
            src.position(src.limit());
        } finally {
            rmw.writeLock().unlock();
        }
    }

    private void writeAligned(long offset, ByteBuffer src, int flags) throws BlockException {
        ByteBuffer data = src.duplicate();
        file.write(offset, src, flags);
        append(offset, data.remaining(), WriteFlags.has(flags, WriteFlags.FUA) ? WriteLog.FUA : 0, data, false);
    }

    /** Unaligned head and tail become padded data writes, the aligned middle a zero write (as QEMU splits it). */
    @Override
    protected void doWriteZeroes(long offset, long length, int flags) throws BlockException {
        long end = offset + length;
        long head = Math.min(end, (offset + sectorSize - 1) & -sectorSize);
        long tail = Math.max(head, end & -sectorSize);
        int dataFlags = flags & WriteFlags.FUA;
        if (head > offset) {
            doWrite(offset, ByteBuffer.allocate((int) (head - offset)), dataFlags);
        }
        if (tail > head) {
            rmw.readLock().lock();
            try {
                file.writeZeroes(head, tail - head, flags);
                append(head, tail - head, WriteFlags.has(flags, WriteFlags.FUA) ? WriteLog.FUA : 0, null, true);
            } finally {
                rmw.readLock().unlock();
            }
        }
        if (end > tail && tail >= head && end > head) {
            doWrite(tail, ByteBuffer.allocate((int) (end - tail)), dataFlags);
        }
    }

    /** Discard is advisory: only its whole sectors are passed on and logged. */
    @Override
    protected void doDiscard(long offset, long length) throws BlockException {
        long start = (offset + sectorSize - 1) & -sectorSize;
        long end = (offset + length) & -sectorSize;
        if (end <= start) {
            return;
        }
        rmw.readLock().lock();
        try {
            file.discard(start, end - start);
            append(start, end - start, WriteLog.DISCARD, null, false);
        } finally {
            rmw.readLock().unlock();
        }
    }

    private boolean aligned(long n) {
        return (n & (sectorSize - 1)) == 0;
    }

    /** The file is flushed to disk first; then the flush is logged, the superblock rewritten, the log flushed. */
    @Override
    public void flushToDisk() throws BlockException {
        file.flush();
        append(0, 0, WriteLog.FLUSH, null, false);
    }

    @Override
    protected BlockStatus doBlockStatus(long offset, long length) throws BlockException {
        return file.blockStatus(offset, length);
    }

    private void append(long offset, long length, long flags, ByteBuffer data, boolean zeroes)
            throws BlockException {
        logLock.lock();
        try {
            long at = nextSector << sectorBits;
            entries++;
            long dataSectors = (flags & WriteLog.DISCARD) != 0 ? 0 : (length + sectorSize - 1) >>> sectorBits;
            nextSector += 1 + dataSectors;
            log.write(at, WriteLog.entry(offset >>> sectorBits, length >>> sectorBits, flags, sectorSize), 0);
            if (data != null) {
                log.write(at + sectorSize, data, 0);
            } else if (zeroes && length > 0) {
                log.writeZeroes(at + sectorSize, dataSectors << sectorBits, 0);
            }
            if ((flags & WriteLog.FLUSH) != 0 || entries % superInterval == 0) {
                log.write(0, WriteLog.superblock(entries, sectorSize), 0);
                if ((flags & WriteLog.FLUSH) != 0) {
                    log.flush();
                }
            }
        } finally {
            logLock.unlock();
        }
    }
}
