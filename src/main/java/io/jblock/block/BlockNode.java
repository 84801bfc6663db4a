package io.jblock.block;

import io.jblock.engine.FlushBatcher;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A node of the block graph: a protocol (file, memory), a format (raw, qcow2)
 * or a filter. Requests are plain blocking calls, made on virtual threads;
 * many may be in flight on one node at once.
 *
 * <p>The public methods are the generic block layer: they check arguments in a
 * fixed order before any I/O, apply the node's settings (read-only, no-flush,
 * FUA emulation), track what was written since the last flush, and then call
 * the driver's {@code do*} methods. A driver implements only those.
 *
 * <h2>Flush</h2>
 * A flush has two steps, and keeping them apart is what makes cache=unsafe
 * both fast and safe against a process crash:
 * <ol>
 *   <li>{@link #flushToOs()}: the node writes its own caches (qcow2 metadata)
 *       to its children. Runs even under no-flush.</li>
 *   <li>{@link #flushToDisk()}: the node makes what it wrote durable on its
 *       medium (fdatasync). Skipped under no-flush, and skipped when nothing
 *       was written since the last successful flush.</li>
 * </ol>
 * Then the children are flushed the same way, so metadata written in step 1
 * reaches the disk below.
 *
 * <h2>Buffers</h2>
 * A buffer's position moves only after the request succeeded: read fills
 * {@code dst} from its position to its limit, write takes {@code src} from its
 * position to its limit.
 */
public abstract class BlockNode implements AutoCloseable {
    private final String driverName;
    private final NodeSettings settings;

    /** Bumped after every completed write, zero-write, discard and truncate (QEMU's write_gen). */
    private final AtomicLong writeGeneration = new AtomicLong();
    /** The write generation that the last successful flush to disk covered; only a flush's run touches it. */
    private long flushedGeneration;
    /**
     * Flushes of one node run one at a time, and callers that overlap share
     * runs: each gets a run that started after it called (group commit, see
     * {@link FlushBatcher}), so N writethrough writes in flight need a few
     * fdatasyncs, not N. A write whose FUA this node emulates announces its
     * flush before it starts, so a run about to start can wait for it.
     */
    private final FlushBatcher flushes = new FlushBatcher();
    private final AtomicLong diskFlushes = new AtomicLong();

    protected BlockNode(String driverName, NodeSettings settings) {
        this.driverName = driverName;
        this.settings = settings;
    }

    // ---------------------------------------------------------------- identity

    public final String driverName() {
        return driverName;
    }

    public final String nodeName() {
        return settings.nodeName();
    }

    public final NodeSettings settings() {
        return settings;
    }

    public final boolean isReadOnly() {
        return settings.readOnly();
    }

    /**
     * Records a new backing file name and format in the image's metadata
     * (QEMU's bdrv_change_backing_file, used by img rebase and amend); null
     * removes the backing file. What the node reads from is not changed until
     * it is opened again. Formats without a backing file refuse, as QEMU's
     * do, with ENOTSUP.
     */
    public void changeBackingFile(String backingFile, String backingFormat) throws BlockException {
        throw new BlockException(Errno.ENOTSUP, Errno.ENOTSUP.text());
    }

    /**
     * Drops everything this layer holds, so that it reads through to its
     * backing file (QEMU's bdrv_make_empty, after img commit). Formats that
     * cannot refuse with ENOTSUP, which img commit ignores, as QEMU does.
     */
    public void makeEmpty() throws BlockException {
        throw new BlockException(Errno.ENOTSUP, Errno.ENOTSUP.text());
    }

    /** The node's children, file first then backing; empty for protocols. */
    public List<BlockChild> children() {
        return List.of();
    }

    /** The child with this role, or null. */
    public final BlockNode child(String role) {
        for (BlockChild c : children()) {
            if (c.role().equals(role)) {
                return c.node();
            }
        }
        return null;
    }

    /** What the node can do; asked by the layers above, never guessed. */
    public abstract Capabilities capabilities();

    /** Size in bytes of what the node presents. */
    public abstract long length() throws BlockException;

    // ---------------------------------------------------------------- requests

    /** Reads {@code dst.remaining()} bytes at {@code offset} into {@code dst}. */
    public final void read(long offset, ByteBuffer dst) throws BlockException {
        checkRange(offset, dst.remaining());
        if (!dst.hasRemaining()) {
            return;
        }
        doRead(offset, dst);
    }

    /** Writes {@code src.remaining()} bytes at {@code offset}; {@code flags} from {@link WriteFlags}. */
    public final void write(long offset, ByteBuffer src, int flags) throws BlockException {
        checkRange(offset, src.remaining());
        checkWritable();
        if (WriteFlags.has(flags, WriteFlags.COMPRESSED) && !supportsCompressedWrites()) {
            throw new BlockException(Errno.ENOTSUP, "Compressed writes are not supported by " + driverName);
        }
        if (!src.hasRemaining()) {
            return;
        }
        boolean emulateFua = emulatesFua(flags);
        if (emulateFua) {
            flushes.expect();
        }
        boolean done = false;
        try {
            doWrite(offset, src, driverFlags(flags));
            done = true;
        } finally {
            writeGeneration.incrementAndGet();
            if (emulateFua && !done) {
                flushes.withdraw();
            }
        }
        if (emulateFua) {
            flushes.sync(this::flushOnce, true);
        }
    }

    /**
     * Makes {@code length} bytes at {@code offset} read as zero. With MAY_UNMAP
     * the node may deallocate them; with NO_FALLBACK it fails with ENOTSUP
     * rather than write a buffer of zeroes.
     */
    public final void writeZeroes(long offset, long length, int flags) throws BlockException {
        checkRange(offset, length);
        checkWritable();
        if (length == 0) {
            return;
        }
        if (settings.discard() == DiscardMode.IGNORE) {
            flags &= ~WriteFlags.MAY_UNMAP;
        }
        boolean emulateFua = emulatesFua(flags);
        if (emulateFua) {
            flushes.expect();
        }
        boolean done = false;
        try {
            doWriteZeroes(offset, length, driverFlags(flags));
            done = true;
        } finally {
            writeGeneration.incrementAndGet();
            if (emulateFua && !done) {
                flushes.withdraw();
            }
        }
        if (emulateFua) {
            flushes.sync(this::flushOnce, true);
        }
    }

    /** Tells the node the bytes are no longer needed; dropped when the node has discard=ignore. */
    public final void discard(long offset, long length) throws BlockException {
        checkRange(offset, length);
        checkWritable();
        if (length == 0 || settings.discard() == DiscardMode.IGNORE) {
            return;
        }
        try {
            doDiscard(offset, length);
        } finally {
            writeGeneration.incrementAndGet();
        }
    }

    /** Changes the node's length. */
    public final void truncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        if (length < 0) {
            throw new BlockException.BadRequest(Errno.EINVAL, "Image size cannot be negative");
        }
        checkWritable();
        try {
            doTruncate(length, exact, prealloc);
        } finally {
            writeGeneration.incrementAndGet();
        }
    }

    /**
     * The status of the run of bytes starting at {@code offset}, at most
     * {@code length} long. The offset must be inside the node.
     */
    public final BlockStatus blockStatus(long offset, long length) throws BlockException {
        checkRange(offset, length);
        long size = length();
        if (offset >= size || length == 0) {
            throw new BlockException.BadRequest(Errno.EINVAL,
                    "block status at offset " + offset + " outside the node (length " + size + ")");
        }
        BlockStatus s = doBlockStatus(offset, Math.min(length, size - offset));
        return s.length() > length ? s.withLength(length) : s;
    }

    /**
     * Flushes the node and, below it, its children: caches to the OS always,
     * then to the disk unless this node has no-flush or wrote nothing since its
     * last flush. Acknowledged in every mode.
     */
    public final void flush() throws BlockException {
        flushes.sync(this::flushOnce);
    }

    /** One run of {@link #flush()}, shared by every caller that arrived before it started. */
    private void flushOnce() throws BlockException {
        long generation = writeGeneration.get();
        BlockNode primary = primaryChild();
        if (primary != null) {
            primary.debugEvent(DebugEvent.FLUSH_TO_OS); // QEMU's bdrv_co_flush reports both steps
        }
        flushToOs();
        if (!settings.noFlush() && generation != flushedGeneration) {
            if (primary != null) {
                primary.debugEvent(DebugEvent.FLUSH_TO_DISK);
            }
            flushToDisk();
            if (hasMedium()) {
                diskFlushes.incrementAndGet();
            }
            flushedGeneration = generation;
        }
        for (BlockChild c : children()) {
            c.node().flush();
        }
    }

    /** The "file" child, else the first child (QEMU's bdrv_primary_child), or null. */
    private BlockNode primaryChild() {
        BlockNode file = child("file");
        if (file != null) {
            return file;
        }
        List<BlockChild> all = children();
        return all.isEmpty() ? null : all.get(0).node();
    }

    /** Whether {@link #doWrite} takes {@link WriteFlags#COMPRESSED}; no by default. */
    protected boolean supportsCompressedWrites() {
        return false;
    }

    /**
     * Starts the OS writing back what this node and the nodes under it (not
     * backing files) have in the page cache, without waiting: a hint for a job
     * that ends with a real flush (convert), so that flush has little left to
     * do. It promises nothing and never fails; this node's own caches stay
     * where they are. By default, passed on to the children.
     */
    public void startWriteback() {
        for (BlockChild c : children()) {
            if (!c.role().equals("backing")) {
                c.node().startWriteback();
            }
        }
    }

    /** Step 1 of a flush: write this node's own caches to its children. Nothing by default. */
    public void flushToOs() throws BlockException {
    }

    /** Step 2 of a flush: make this node's writes durable on its medium. Nothing by default. */
    public void flushToDisk() throws BlockException {
    }

    /**
     * Whether this node's flush to disk reaches a medium (a file's fdatasync),
     * so that it counts in {@link #diskFlushCount()}; false for formats and filters.
     */
    protected boolean hasMedium() {
        return false;
    }

    /**
     * A format above reports that it is about to do what {@code event} names
     * (QEMU's BLKDBG_EVENT, sent to the format's file child). Nothing, except
     * in a blkdebug filter, which may inject an error into the next request
     * or change its state.
     */
    public void debugEvent(DebugEvent event) {
    }

    /** The node's own description for info commands. */
    public NodeInfo info() throws BlockException {
        return NodeInfo.simple(driverName);
    }

    /**
     * Bytes the image takes on the host (QEMU's allocated file size), -1 when
     * unknown. Formats ask their file.
     */
    public long allocatedSize() throws BlockException {
        BlockNode file = child("file");
        return file != null ? file.allocatedSize() : -1;
    }

    /** How many flushes to disk this node and every node below it have made (fdatasync calls for files). */
    public final long diskFlushCount() {
        long n = diskFlushes.get();
        for (BlockChild c : children()) {
            n += c.node().diskFlushCount();
        }
        return n;
    }

    /** Closes the node and the children it owns. */
    @Override
    public void close() throws BlockException {
        BlockException first = null;
        for (BlockChild c : children()) {
            try {
                c.node().close();
            } catch (BlockException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    // ---------------------------------------------------------------- driver hooks

    protected abstract void doRead(long offset, ByteBuffer dst) throws BlockException;

    /** Flags may include FUA only when {@link Capabilities#nativeFua()} is true. */
    protected abstract void doWrite(long offset, ByteBuffer src, int flags) throws BlockException;

    /** Default: write zero buffers, unless NO_FALLBACK forbids it. */
    protected void doWriteZeroes(long offset, long length, int flags) throws BlockException {
        if (WriteFlags.has(flags, WriteFlags.NO_FALLBACK)) {
            throw new BlockException(Errno.ENOTSUP, "fast zeroing not supported by " + driverName);
        }
        ZeroBuffers.write(this::doWrite, offset, length, flags & WriteFlags.FUA);
    }

    /** Default: discard is advisory, so doing nothing is correct. */
    protected void doDiscard(long offset, long length) throws BlockException {
    }

    protected void doTruncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        throw new BlockException(Errno.ENOTSUP, "Image format driver does not support resize");
    }

    /** Default: everything is data, allocated in this node. */
    protected BlockStatus doBlockStatus(long offset, long length) throws BlockException {
        return new BlockStatus(length, BlockStatus.DATA | BlockStatus.ALLOCATED, 1);
    }

    // ---------------------------------------------------------------- FUA

    /**
     * The flags the driver sees: FUA only when it can honour it natively and
     * the node flushes at all (no-flush strips FUA).
     */
    private int driverFlags(int flags) {
        if (WriteFlags.has(flags, WriteFlags.FUA) && (settings.noFlush() || !capabilities().nativeFua())) {
            return flags & ~WriteFlags.FUA;
        }
        return flags;
    }

    /** FUA on a node without native FUA: the request is followed by a flush of this node. */
    private boolean emulatesFua(int flags) {
        return WriteFlags.has(flags, WriteFlags.FUA) && !settings.noFlush() && !capabilities().nativeFua();
    }

    // ---------------------------------------------------------------- checks

    private static void checkRange(long offset, long length) throws BlockException {
        if (offset < 0 || length < 0 || offset > Long.MAX_VALUE - length) {
            throw new BlockException.BadRequest(Errno.EIO,
                    "request out of range: offset " + offset + ", length " + length);
        }
    }

    private void checkWritable() throws BlockException {
        if (settings.readOnly()) {
            throw new BlockException.BadRequest(Errno.EPERM, "Block node is read-only");
        }
    }
}
