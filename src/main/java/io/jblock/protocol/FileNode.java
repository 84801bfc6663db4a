package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.Errno;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;
import io.jblock.block.WriteFlags;
import io.jblock.engine.AlignedAccess;
import io.jblock.engine.EngineFile;
import io.jblock.engine.ErrnoException;
import io.jblock.engine.RangeLock;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The file protocol: a host file through an I/O engine.
 *
 * <p>Durability rule (fsyncgate): after one failed fdatasync the kernel may
 * have dropped the dirty pages and cleared the error, so a later fdatasync
 * could succeed without the data being on disk. Once a datasync fails, every
 * later flush of this file fails too. O_DIRECT does not change that here:
 * it bypasses the page cache but not the device's write cache, and the space
 * operations go through the page cache anyway.
 *
 * <p>Space: zeroes and discards become fallocate calls where the file system
 * has them (holes are what block status reports as zero), with QEMU's order of
 * fallbacks, ending in writing zero buffers unless NO_FALLBACK forbids it.
 */
public final class FileNode extends BlockNode {
    /** Zero buffers written at once for preallocation=full and the zero-write fallback. */
    private static final int ZERO_CHUNK = 1 << 20;
    /** Aligned beyond any O_DIRECT alignment the engine probes, so direct writes of it need no bounce. */
    private static final ByteBuffer ZEROES = Arena.global().allocate(ZERO_CHUNK, 1 << 16).asByteBuffer()
            .asReadOnlyBuffer();

    private final Path path;
    private final EngineFile file;
    private final AlignedAccess io;
    private final boolean fallocateWorks;
    /**
     * Under O_DIRECT, writes that end on the alignment share it, and a write
     * whose end is not aligned holds it alone (see {@link #writeUnalignedEnd}).
     */
    private final java.util.concurrent.locks.ReentrantReadWriteLock endLock =
            new java.util.concurrent.locks.ReentrantReadWriteLock();
    /** QEMU's image locks on this file; null with locking=off. */
    private final ImageLocks locks;
    private volatile boolean pageCacheInconsistent;

    /**
     * The last data extent SEEK_DATA/SEEK_HOLE found (QEMU's file-posix keeps
     * the same one-entry cache). On ext4 a seek inside a large unwritten
     * (fallocated) extent walks the page cache, so asking again for every 4 KiB
     * read costs milliseconds. Only data is cached and writes only turn holes
     * into data, so the cache can err only on the safe side (calling a hole
     * data); anything that makes holes clears it.
     */
    private volatile KnownData knownData = KnownData.NONE;
    private static final long SECTOR = 512;

    /**
     * The file's size as this node knows it, QEMU's total_sectors: read at
     * open, read again after a resize, and raised by every write, zero-write
     * or preallocation that ends past it. {@link #length()} is asked for every
     * request (the drive checks each one against it), and asking the kernel
     * each time was an fstat per request; worse, since Linux 6.13 a stat
     * between two writes makes the second one take a fine-grained timestamp
     * and dirty the inode, which showed as one ext4_mark_inode_dirty per
     * O_DIRECT write and fdatasyncs several times slower than QEMU's.
     * As under QEMU (a regular file's length is not "variable" there), a file
     * grown or shrunk by another process is not noticed until it is opened again;
     * image locking is what keeps other writers away.
     */
    private final AtomicLong knownSize;

    private record KnownData(long start, long end) {
        static final KnownData NONE = new KnownData(0, 0);
    }

    public FileNode(NodeSettings settings, Path path, EngineFile file) {
        this(settings, path, file, null);
    }

    FileNode(NodeSettings settings, Path path, EngineFile file, ImageLocks locks) {
        super("file", settings);
        this.path = path;
        this.file = file;
        this.locks = locks;
        this.io = new AlignedAccess(file);
        this.knownSize = new AtomicLong(initialSize(file));
        this.fallocateWorks = !settings.readOnly() && probeFallocate();
    }

    private static long initialSize(EngineFile file) {
        try {
            return file.size();
        } catch (IOException e) {
            // Reported by the first request that asks the length, as before the length was cached.
            return -1;
        }
    }

    /**
     * Whether this file system punches holes, probed once with a punch past the
     * end of the file, which changes nothing (KEEP_SIZE, no blocks there);
     * engines that count fallocates see this one at open.
     */
    private boolean probeFallocate() {
        try {
            long size = knownSize.get();
            return file.punchHole(size >= 0 ? size : file.size(), 1);
        } catch (IOException e) {
            return false;
        }
    }

    public Path path() {
        return path;
    }

    /**
     * Locks the image for what the users above this node do with it and
     * share, as QEMU's file protocol does once its graph is complete; called
     * again, moves the locks to the new permissions. Fails, changing nothing,
     * with QEMU's message when another process (or another open in this one)
     * is in the way. Does nothing under locking=off.
     */
    public void lockImage(ImagePermissions permissions) throws BlockException {
        if (locks != null) {
            locks.set(permissions);
        }
    }

    @Override
    public Capabilities capabilities() {
        return new Capabilities(false, fallocateWorks, true, io.alignment(), Capabilities.MAX_TRANSFER);
    }

    @Override
    public long length() throws BlockException {
        // QEMU counts every image in whole 512-byte sectors (refresh_total_sectors): an odd-sized
        // file is seen rounded up, and its tail past the real end reads as zeroes.
        long size = knownSize.get();
        if (size < 0) {
            size = refreshSize();
        }
        return size + ((-size) & (SECTOR - 1));
    }

    /** Asks the kernel for the file's size again (after a resize), and remembers it. */
    private long refreshSize() throws BlockException {
        long size = fileSize();
        knownSize.set(size);
        return size;
    }

    /** After a write or zero-write that succeeded, the file is at least {@code end} bytes long. */
    private void grewTo(long end) {
        knownSize.accumulateAndGet(end, Math::max);
    }

    /** The file's real size; what the node does to the file is measured by this, not by {@link #length()}. */
    private long fileSize() throws BlockException {
        try {
            return file.size();
        } catch (IOException e) {
            throw failure("Could not get the size of '" + path + "'", e);
        }
    }

    @Override
    protected boolean hasMedium() {
        return true;
    }

    @Override
    protected void doRead(long offset, ByteBuffer dst) throws BlockException {
        try {
            // Past the end of the file reads as zeroes, as QEMU's file driver does.
            io.read(offset, dst.duplicate());
        } catch (IOException e) {
            throw failure("read of '" + path + "' at offset " + offset + ", length " + dst.remaining()
                    + " failed", e);
        }
        dst.position(dst.limit());
    }

    @Override
    protected void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        int alignment = io.alignment();
        try {
            if (alignment == 1) {
                io.write(offset, src.duplicate());
            } else if (((offset + src.remaining()) & (alignment - 1)) == 0) {
                endLock.readLock().lock();
                try {
                    io.write(offset, src.duplicate());
                } finally {
                    endLock.readLock().unlock();
                }
            } else {
                writeUnalignedEnd(offset, src);
            }
        } catch (IOException e) {
            throw failure("write of '" + path + "' at offset " + offset + ", length " + src.remaining()
                    + " failed", e);
        }
        grewTo(offset + src.remaining());
        src.position(src.limit());
    }

    /**
     * Under O_DIRECT a write whose end is not aligned is padded to the
     * alignment (read-modify-write of its last block), which would leave the
     * file longer than the image when it writes at the end: a 6 MiB + 1536 B
     * image converted with -t none became 6295552 bytes long, where QEMU's is
     * 6292992. The file is cut back to what the write asked for, or to its
     * old length if that was longer. Exclusive against every other write of
     * this node, so no write that grew the file meanwhile is cut.
     */
    private void writeUnalignedEnd(long offset, ByteBuffer src) throws IOException {
        long end = offset + src.remaining();
        endLock.writeLock().lock();
        try {
            long before = file.size();
            io.write(offset, src.duplicate());
            long wanted = Math.max(before, end);
            if (file.size() > wanted) {
                file.truncate(wanted);
            }
        } finally {
            endLock.writeLock().unlock();
        }
    }

    @Override
    public void startWriteback() {
        try {
            file.startWriteback();
        } catch (IOException e) {
            // Only a hint: a write-back error stays with the file for the flush that follows, which reports it.
        }
    }

    @Override
    public void flushToDisk() throws BlockException {
        if (pageCacheInconsistent) {
            throw new BlockException(Errno.EIO, "an earlier fdatasync of '" + path
                    + "' failed; its data may be lost, so every later flush fails too");
        }
        try {
            file.datasync();
        } catch (IOException e) {
            pageCacheInconsistent = true;
            throw failure("fdatasync of '" + path + "' failed", e);
        }
    }

    // ---------------------------------------------------------------- zeroes and discard

    /**
     * QEMU's order: with MAY_UNMAP punch a hole (it reads as zero by
     * definition); else, or where punching is refused, ZERO_RANGE; then a punch
     * followed by re-allocating the blocks; past the end of the file, fallocate
     * mode 0. When all are refused, zero buffers, unless NO_FALLBACK.
     * The range may end past the end of the file: the file then grows to its
     * end, as any write would make it.
     */
    @Override
    protected void doWriteZeroes(long offset, long length, int flags) throws BlockException {
        // Making holes: what the data-extent cache says may stop being true, before and after.
        knownData = KnownData.NONE;
        try {
            changeWriteZeroes(offset, length, flags);
            grewTo(offset + length);
        } finally {
            knownData = KnownData.NONE;
        }
    }

    private void changeWriteZeroes(long offset, long length, int flags) throws BlockException {
        long end = offset + length;
        try (RangeLock.Held ignored = io.lockForSpaceOperation(offset, length)) {
            long size = file.size();
            if (WriteFlags.has(flags, WriteFlags.MAY_UNMAP) && unmapZeroes(offset, end, size)) {
                return;
            }
            if (file.zeroRange(offset, length, end <= size)) {
                return;
            }
            if (file.punchHole(offset, length) && file.allocate(offset, length)) {
                return;
            }
            if (offset >= size && file.allocate(offset, length)) {
                return;
            }
        } catch (IOException e) {
            throw failure("write zeroes of '" + path + "' at offset " + offset + ", length " + length
                    + " failed", e);
        }
        if (WriteFlags.has(flags, WriteFlags.NO_FALLBACK)) {
            throw new BlockException(Errno.ENOTSUP, "the file system of '" + path
                    + "' cannot zero a range without writing it, and the request forbids the fallback");
        }
        writeZeroBuffers(offset, length);
    }

    /**
     * Punches the part inside the file; grows the file with a hole for the part
     * past its end (a punch with KEEP_SIZE does not grow it). False when the
     * file system does not punch.
     */
    private boolean unmapZeroes(long offset, long end, long size) throws IOException {
        long inside = Math.min(end, size) - offset;
        if (inside > 0 && !file.punchHole(offset, inside)) {
            return false;
        }
        if (end > size) {
            file.truncate(end);
        }
        return true;
    }

    private void writeZeroBuffers(long offset, long length) throws BlockException {
        long done = 0;
        while (done < length) {
            int n = (int) Math.min(length - done, ZERO_CHUNK);
            doWrite(offset + done, ZEROES.duplicate().limit(n), 0);
            done += n;
        }
    }

    /** Punches a hole, as QEMU's discard on files; where the file system cannot, the discard is dropped. */
    @Override
    protected void doDiscard(long offset, long length) throws BlockException {
        // Making holes: what the data-extent cache says may stop being true, before and after.
        knownData = KnownData.NONE;
        try {
            changeDiscard(offset, length);
        } finally {
            knownData = KnownData.NONE;
        }
    }

    private void changeDiscard(long offset, long length) throws BlockException {
        try (RangeLock.Held ignored = io.lockForSpaceOperation(offset, length)) {
            file.punchHole(offset, length);
        } catch (IOException e) {
            throw failure("discard of '" + path + "' at offset " + offset + ", length " + length + " failed", e);
        }
    }

    // ---------------------------------------------------------------- truncate

    @Override
    protected void doTruncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        // Making holes: what the data-extent cache says may stop being true, before and after.
        knownData = KnownData.NONE;
        try {
            changeTruncate(length, exact, prealloc);
        } finally {
            knownData = KnownData.NONE;
            // Whatever happened (a failed preallocation puts the old length back), ask the kernel.
            try {
                refreshSize();
            } catch (BlockException e) {
                knownSize.set(-1);
            }
        }
    }

    private void changeTruncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        Prealloc mode = prealloc == null ? Prealloc.OFF : prealloc;
        if (mode == Prealloc.METADATA) {
            throw new BlockException(Errno.ENOTSUP, "Unsupported preallocation mode: metadata");
        }
        long current = fileSize();
        if (current > length && mode != Prealloc.OFF) {
            throw new BlockException(Errno.ENOTSUP, "Cannot use preallocation for shrinking files");
        }
        switch (mode) {
            case OFF -> resize(length);
            case FALLOC -> preallocate(current, length);
            case FULL -> writePreallocation(current, length);
            case METADATA -> throw new AssertionError("refused above");
        }
    }

    private void resize(long length) throws BlockException {
        try {
            file.truncate(length);
        } catch (IOException e) {
            throw failure("Could not resize file", e);
        }
    }

    /** preallocation=falloc: fallocate mode 0 over the new part, which also grows the file. */
    private void preallocate(long current, long length) throws BlockException {
        if (length == current) {
            return;
        }
        try {
            if (!file.allocate(current, length - current)) {
                throw new BlockException(Errno.ENOTSUP, "Could not preallocate new data: the file system of '"
                        + path + "' does not support fallocate (preallocation=full writes zeroes instead)");
            }
        } catch (IOException e) {
            restoreLength(current);
            throw failure("Could not preallocate new data", e);
        }
    }

    /** preallocation=full: grow, write zeroes over the new part in bounded chunks, and sync, as QEMU does. */
    private void writePreallocation(long current, long length) throws BlockException {
        if (length == current) {
            return;
        }
        resize(length);
        try {
            writeZeroBuffers(current, length - current);
        } catch (BlockException e) {
            restoreLength(current);
            throw new BlockException(e.errno(), "Could not write zeros for preallocation: " + e.errno().text(), e);
        }
        try {
            file.datasync();
        } catch (IOException e) {
            pageCacheInconsistent = true;
            restoreLength(current);
            throw failure("Could not flush file to disk", e);
        }
    }

    /** After a failed preallocation the file goes back to its old length; failing that is only reported. */
    private void restoreLength(long current) {
        try {
            file.truncate(current);
        } catch (IOException ignored) {
            // The preallocation error is the one to report.
        }
    }

    // ---------------------------------------------------------------- block status

    /**
     * From SEEK_DATA/SEEK_HOLE, as QEMU's file-posix: data runs are DATA,
     * holes (trailing ones included) ZERO, both allocated in this node. Where
     * the file system cannot tell, or the answer is inconsistent because the
     * file changed between the two seeks, everything is DATA.
     */
    @Override
    protected BlockStatus doBlockStatus(long offset, long length) {
        return runStatus(offset, length).at(offset, this);
    }

    private BlockStatus runStatus(long offset, long length) {
        final int data = BlockStatus.DATA | BlockStatus.ALLOCATED;
        final int zero = BlockStatus.ZERO | BlockStatus.ALLOCATED;
        KnownData known = knownData;
        if (offset >= known.start() && offset < known.end()) {
            return new BlockStatus(Math.min(known.end() - offset, length), data, 1);
        }
        try {
            long nextData = file.seekData(offset);
            if (nextData < 0) {
                return new BlockStatus(length, zero, 1);
            }
            if (nextData > offset) {
                return new BlockStatus(Math.min(nextData - offset, length), zero, 1);
            }
            long nextHole = file.seekHole(offset);
            if (nextHole < 0) {
                // Truncated behind our back since the first seek: like a trailing hole.
                return new BlockStatus(length, zero, 1);
            }
            if (nextHole == offset) {
                // A hole was dug between the two seeks: nothing is known.
                return new BlockStatus(length, data, 1);
            }
            knownData = new KnownData(offset, nextHole);
            return new BlockStatus(Math.min(nextHole - offset, length), data, 1);
        } catch (IOException | UnsupportedOperationException e) {
            return new BlockStatus(length, data, 1);
        }
    }

    @Override
    public long allocatedSize() throws BlockException {
        try {
            return file.allocatedSize();
        } catch (IOException e) {
            throw failure("stat of '" + path + "' failed", e);
        }
    }

    @Override
    public NodeInfo info() {
        return NodeInfo.simple("file");
    }

    @Override
    public void close() throws BlockException {
        if (locks != null) {
            locks.close();
        }
        try {
            file.close();
        } catch (IOException e) {
            throw failure("close of '" + path + "' failed", e);
        }
    }

    // ---------------------------------------------------------------- errors

    /** A failure with the errno the OS gave, so qemu-io prints the same text QEMU would. */
    private static BlockException failure(String what, IOException e) {
        if (e instanceof BlockException b) {
            return b;
        }
        Errno errno = errnoOf(e);
        String reason = e instanceof ErrnoException ee ? ee.reason() : String.valueOf(e.getMessage());
        return new BlockException(errno, what + ": " + reason, e);
    }

    /**
     * The errno behind an engine failure: given by FFM calls; FileChannel only
     * has strerror's text, so that is matched back to the number.
     */
    static Errno errnoOf(IOException e) {
        if (e instanceof ErrnoException ee) {
            return Errno.of(ee.errno());
        }
        String m = e.getMessage();
        if (m != null) {
            for (Errno x : Errno.values()) {
                if (m.endsWith(x.text())) {
                    return x;
                }
            }
        }
        return Errno.EIO;
    }
}
