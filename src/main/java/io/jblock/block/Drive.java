package io.jblock.block;

import java.nio.ByteBuffer;

/**
 * The front end of a node graph, what tools and exports read and write
 * through (QEMU's BlockBackend with its guest-visible settings).
 *
 * <p>The drive emulates the guest's write cache: with writeback off
 * (cache=writethrough, cache=directsync) every write and zero-write carries
 * FUA, which a node without native FUA turns into write-then-flush. Nodes
 * never see "writethrough" as such. The drive also checks every request
 * against the drive's length and read-only setting before any I/O, turns
 * all-zero writes into zero-writes under detect-zeroes, and counts.
 *
 * <p>Thread-safe: any number of requests may be in flight, typically one per
 * virtual thread.
 */
public final class Drive implements AutoCloseable {
    private final String id;
    private final BlockNode root;
    private final boolean writeback;
    private final boolean readOnly;
    private final DetectZeroes detectZeroes;
    private final DriveStats stats;
    /**
     * The root's length when a request last asked for it, or -1: a request inside it is checked without
     * asking again. Asking is an fstat on a file, one of every eight system calls of a 4 KiB NBD write;
     * QEMU's blk_check_byte_request too checks against a length it keeps (bdrv_getlength of a regular
     * file reads total_sectors, refreshed on truncate). A request past it asks again, so a root that
     * grew is seen at once; a truncate through this drive forgets it.
     */
    private volatile long knownLength = -1;

    /**
     * @param id           the drive's id (may be empty)
     * @param root         the top node; the drive owns it and closes it
     * @param writeback    the guest-visible write cache; off makes every write FUA
     * @param readOnly     refuse writes at the drive, whatever the node allows
     * @param detectZeroes what to do with writes of all-zero buffers
     */
    public Drive(String id, BlockNode root, boolean writeback, boolean readOnly, DetectZeroes detectZeroes) {
        this.id = id == null ? "" : id;
        this.root = root;
        this.writeback = writeback;
        this.readOnly = readOnly || root.isReadOnly();
        this.detectZeroes = detectZeroes;
        this.stats = new DriveStats(root);
    }

    /** A writeback, writable drive over {@code root}. */
    public Drive(BlockNode root) {
        this("", root, true, false, DetectZeroes.OFF);
    }

    public String id() {
        return id;
    }

    public BlockNode root() {
        return root;
    }

    public boolean writeback() {
        return writeback;
    }

    public boolean isReadOnly() {
        return readOnly;
    }

    public DetectZeroes detectZeroes() {
        return detectZeroes;
    }

    /** The cache settings the drive runs with: its write cache and its root's direct and no-flush. */
    public CacheOptions cacheOptions() {
        return new CacheOptions(writeback, root.settings().direct(), root.settings().noFlush());
    }

    public DriveStats stats() {
        return stats;
    }

    public long length() throws BlockException {
        return root.length();
    }

    /** Reads {@code dst.remaining()} bytes at {@code offset}; the whole range must be inside the drive. */
    public void read(long offset, ByteBuffer dst) throws BlockException {
        int n = dst.remaining();
        try {
            checkRequest(offset, n);
            root.read(offset, dst);
        } catch (BlockException e) {
            stats.errors.increment();
            throw e;
        }
        stats.reads.increment();
        stats.readBytes.add(n);
    }

    /** Writes {@code src.remaining()} bytes at {@code offset}; FUA is added when the write cache is off. */
    public void write(long offset, ByteBuffer src, int flags) throws BlockException {
        int n = src.remaining();
        try {
            checkRequest(offset, n);
            checkWritable();
            flags = applyWriteCache(flags);
            if (detectZeroes != DetectZeroes.OFF && ZeroBuffers.isZero(src)) {
                int zflags = flags & WriteFlags.FUA;
                if (detectZeroes == DetectZeroes.UNMAP) {
                    zflags |= WriteFlags.MAY_UNMAP;
                }
                root.writeZeroes(offset, n, zflags);
                src.position(src.limit());
            } else {
                root.write(offset, src, flags);
            }
        } catch (BlockException e) {
            stats.errors.increment();
            throw e;
        }
        stats.writes.increment();
        stats.writeBytes.add(n);
    }

    /** Makes the range read as zero; see {@link WriteFlags} for MAY_UNMAP and NO_FALLBACK. */
    public void writeZeroes(long offset, long length, int flags) throws BlockException {
        try {
            checkRequest(offset, length);
            checkWritable();
            root.writeZeroes(offset, length, applyWriteCache(flags));
        } catch (BlockException e) {
            stats.errors.increment();
            throw e;
        }
        stats.zeroWrites.increment();
    }

    /** Discards the range; a no-op where the graph has discard=ignore. */
    public void discard(long offset, long length) throws BlockException {
        try {
            checkRequest(offset, length);
            checkWritable();
            root.discard(offset, length);
        } catch (BlockException e) {
            stats.errors.increment();
            throw e;
        }
        stats.discards.increment();
    }

    /**
     * Flushes the whole graph. Reported done in every cache mode; what it
     * costs (metadata to the OS only, or also fdatasync) is the mode's choice.
     */
    public void flush() throws BlockException {
        stats.flushRequests.increment();
        try {
            root.flush();
        } catch (BlockException e) {
            stats.errors.increment();
            throw e;
        }
    }

    /** The status of the run starting at {@code offset}, at most {@code length} long. */
    public BlockStatus blockStatus(long offset, long length) throws BlockException {
        return root.blockStatus(offset, length);
    }

    /** Resizes the drive's root node. */
    public void truncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        checkWritable();
        knownLength = -1;
        try {
            root.truncate(length, exact, prealloc);
        } finally {
            knownLength = -1;
        }
    }

    /**
     * Flushes (as QEMU's bdrv_close does, so a format's cached metadata
     * reaches its file on every clean close, in every cache mode) and closes
     * the graph. The graph is closed even when the flush fails; the first
     * failure is thrown.
     */
    @Override
    public void close() throws BlockException {
        BlockException failure = null;
        if (!readOnly) {
            try {
                root.flush();
            } catch (BlockException e) {
                failure = e;
            }
        }
        try {
            root.close();
        } catch (BlockException e) {
            if (failure == null) {
                failure = e;
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    private int applyWriteCache(int flags) {
        return writeback ? flags : flags | WriteFlags.FUA;
    }

    /** QEMU's blk_check_byte_request: negative or past-the-end requests fail with EIO. */
    private void checkRequest(long offset, long length) throws BlockException {
        if (length < 0 || offset < 0) {
            throw new BlockException.BadRequest(Errno.EIO,
                    "request out of range: offset " + offset + ", length " + length);
        }
        long known = knownLength;
        if (offset <= known && known - offset >= length) {
            return;
        }
        long size = root.length();
        knownLength = size;
        if (offset > size || size - offset < length) {
            throw new BlockException.BadRequest(Errno.EIO,
                    "request past the end: offset " + offset + ", length " + length + ", drive length " + size);
        }
    }

    private void checkWritable() throws BlockException {
        if (readOnly) {
            throw new BlockException.BadRequest(Errno.EPERM, "Block node is read-only");
        }
    }
}
