package io.jblock.engine;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;

/**
 * A file whose data path goes through its own io_uring: reads, writes,
 * fdatasync and fallocate are submitted to the ring and the calling thread
 * parks until they complete; but a buffered read (no O_DIRECT) first asks
 * the page cache on the calling thread ({@link NoWaitRead}), and only what
 * is not cached goes through the ring. The rest (size, truncate, the seeks,
 * fstat, alignment) is the threads engine's file on the same descriptor,
 * whose FFM calls are quick metadata operations.
 *
 * <p>The kernel reads and writes the buffer's memory directly, so a buffer
 * must have an address: direct buffers go as they are; heap buffers are
 * copied through native memory of at most {@link #BOUNCE_SIZE} at a time.
 * Short transfers are continued until the buffer is done, the file ends
 * (a read of 0), or, with O_DIRECT, a read stops at an unaligned length,
 * which can only be the end of the file.
 */
final class IoUringFile extends ForwardingEngineFile {
    /** The most a heap buffer is copied through at once. */
    static final int BOUNCE_SIZE = 1 << 20;
    /** Reads that skip the page-cache attempt after one missed. */
    static final int SKIP_AFTER_MISS = 16;

    private final int fd;
    private final int alignment;
    private final IoUringRing ring;
    private final FlushBatcher syncs = new FlushBatcher();
    /**
     * Buffered reads try the page cache on the calling thread first ({@link
     * NoWaitRead}); cleared for good if the file system refuses RWF_NOWAIT.
     * Never set with O_DIRECT.
     */
    private volatile boolean readCacheFirst;
    /**
     * Reads left that go straight to the ring after one missed the page
     * cache (data that is not cached now is likely not cached next door
     * either, and each miss costs a system call). A hint: threads race on it
     * without harm, as any value only chooses between two correct paths.
     */
    private int skipCacheFirst;

    IoUringFile(ThreadsEngine.ChannelFile file, IoUringRing ring) {
        super(file);
        this.fd = file.fd();
        this.alignment = file.alignment();
        this.ring = ring;
        this.readCacheFirst = alignment == 1;
    }

    @Override
    public int read(ByteBuffer dst, long pos) throws IOException {
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("Read-only buffer");
        }
        if (pos < 0) {
            throw new IllegalArgumentException("Negative position");
        }
        if (!dst.hasRemaining()) {
            return 0;
        }
        int n;
        if (dst.isDirect()) {
            n = transfer(IoUring.IORING_OP_READ, MemorySegment.ofBuffer(dst), pos);
            Reference.reachabilityFence(dst);
            dst.position(dst.position() + n);
        } else {
            n = bounced(dst, pos, true);
        }
        return n == 0 ? -1 : n;
    }

    @Override
    public int write(ByteBuffer src, long pos) throws IOException {
        if (pos < 0) {
            throw new IllegalArgumentException("Negative position");
        }
        if (!src.hasRemaining()) {
            return 0;
        }
        int n;
        if (src.isDirect()) {
            n = transfer(IoUring.IORING_OP_WRITE, MemorySegment.ofBuffer(src), pos);
            Reference.reachabilityFence(src);
            src.position(src.position() + n);
        } else {
            n = bounced(src, pos, false);
        }
        return n;
    }

    /** A heap buffer through native memory, chunk by chunk, until done or a chunk comes back short. */
    private int bounced(ByteBuffer buf, long pos, boolean read) throws IOException {
        int len = buf.remaining();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment tmp = arena.allocate(Math.min(len, BOUNCE_SIZE), Math.max(alignment, 8));
            int done = 0;
            while (done < len) {
                int chunk = (int) Math.min(len - done, tmp.byteSize());
                MemorySegment part = tmp.asSlice(0, chunk);
                int n;
                if (read) {
                    n = transfer(IoUring.IORING_OP_READ, part, pos + done);
                    buf.put(buf.position(), part.asByteBuffer(), 0, n);
                } else {
                    part.copyFrom(MemorySegment.ofBuffer(buf).asSlice(0, chunk));
                    n = transfer(IoUring.IORING_OP_WRITE, part, pos + done);
                }
                buf.position(buf.position() + n);
                done += n;
                if (n < chunk) {
                    break;
                }
            }
            return done;
        }
    }

    /** Reads or writes {@code seg} at {@code pos}, continuing short transfers; returns the bytes moved. */
    private int transfer(byte opcode, MemorySegment seg, long pos) throws IOException {
        boolean read = opcode == IoUring.IORING_OP_READ;
        String call = read ? "read" : "write";
        long len = seg.byteSize();
        long done = 0;
        // Not once close has begun: the descriptor may be closed and its number reused; the ring refuses.
        if (read && readCacheFirst && !ring.closing()) {
            long res = cached(seg.address(), (int) len, pos);
            if (res == 0) {
                return 0; // the end of the file
            }
            if (res > 0) {
                done = res;
            }
        }
        while (done < len) {
            int res = ring.run(call, opcode, fd, pos + done, seg.address() + done, (int) (len - done), 0);
            if (res < 0) {
                if (-res == Libc.EINTR || -res == Libc.EAGAIN) {
                    continue;
                }
                throw new ErrnoException(call, -res);
            }
            if (res == 0) {
                if (!read && done == 0) {
                    throw new IOException("write at offset " + pos + " wrote nothing of " + len + " bytes");
                }
                break;
            }
            done += res;
            if (read && alignment > 1 && done % alignment != 0) {
                break; // O_DIRECT stopped mid-block: the end of the file
            }
        }
        return (int) done;
    }

    /**
     * What the page cache has at {@code pos} now, read on this thread: the
     * bytes read (0 at the end of the file), or -1 when the ring must do it
     * (not cached, or an error, which the ring's read then reports as its own).
     */
    private long cached(long addr, int len, long pos) {
        if (skipCacheFirst > 0) {
            skipCacheFirst--;
            return -1;
        }
        long res = NoWaitRead.read(fd, addr, len, pos);
        if (res >= 0) {
            return res;
        }
        int errno = (int) -res;
        if (errno == Libc.EAGAIN) {
            skipCacheFirst = SKIP_AFTER_MISS;
        } else if (errno == NoWaitRead.EOPNOTSUPP || errno == Libc.EINVAL) {
            readCacheFirst = false;
        }
        return -1;
    }

    @Override
    public void datasync() throws IOException {
        // Concurrent callers share fdatasyncs (see FlushBatcher): writethrough at depth 32 is a few, not 32.
        syncs.sync(() -> {
            int res = ring.run("fdatasync", IoUring.IORING_OP_FSYNC, fd, 0, 0, 0, IoUring.IORING_FSYNC_DATASYNC);
            if (res < 0) {
                throw new ErrnoException("fdatasync", -res);
            }
        });
    }

    @Override
    public boolean punchHole(long offset, long length) throws IOException {
        return fallocate(Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    @Override
    public boolean zeroRange(long offset, long length, boolean keepSize) throws IOException {
        return fallocate(Libc.FALLOC_FL_ZERO_RANGE | (keepSize ? Libc.FALLOC_FL_KEEP_SIZE : 0), offset, length);
    }

    @Override
    public boolean allocate(long offset, long length) throws IOException {
        return fallocate(Libc.FALLOC_ALLOCATE, offset, length);
    }

    /** IORING_OP_FALLOCATE: the length goes in addr, the mode in len. */
    private boolean fallocate(int mode, long offset, long length) throws IOException {
        String call = "fallocate(" + Libc.fallocateModeName(mode) + ")";
        int res;
        do {
            res = ring.run(call, IoUring.IORING_OP_FALLOCATE, fd, offset, length, mode, 0);
        } while (res == -Libc.EINTR);
        if (res >= 0) {
            return true;
        }
        int errno = -res;
        // The file system says no (as ThreadsEngine decides): the caller falls back.
        if (Libc.isRefusedByFileSystem(errno)) {
            return false;
        }
        throw new ErrnoException(call, errno);
    }

    @Override
    public void close() throws IOException {
        try {
            ring.close();
        } finally {
            super.close();
        }
    }

    /** The ring, for tests of the engine's shutdown. */
    IoUringRing ring() {
        return ring;
    }
}
