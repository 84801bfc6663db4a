package io.jblock.engine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * Whole-request reads and writes of any offset, length and buffer on a file
 * whose engine needs aligned ones (O_DIRECT). With alignment 1 requests go
 * straight through. Otherwise:
 * <ul>
 *   <li>a buffer that is not direct or not aligned is bounced through pooled
 *       aligned memory, at most {@link #BOUNCE_SIZE} at a time;</li>
 *   <li>an unaligned offset or length is widened to the enclosing aligned
 *       blocks: reads read them and copy out the middle; writes read the
 *       partial first and last blocks, patch them and write them back
 *       (read-modify-write), holding those blocks exclusively so no other write
 *       lands in between (see {@link RangeLock});</li>
 *   <li>at the end of the file a direct read comes back short and anything
 *       past it reads as zeroes; an RMW of the last partial block writes the
 *       whole block, so the file grows to the next aligned size, as it does
 *       under QEMU with cache.direct=on.</li>
 * </ul>
 * Aligned writes and space operations (zeroing, punching) share their range;
 * only read-modify-writes are exclusive. Reads take no lock: a read that
 * overlaps a concurrent write may see either, which is allowed.
 */
public final class AlignedAccess {
    /** The most bounced at once: big requests loop, so memory stays bounded whatever the request size. */
    static final int BOUNCE_SIZE = 1 << 20;
    /** Bounce buffers kept per file for reuse. */
    private static final int IDLE_BOUNCE_BUFFERS = 4;

    private final EngineFile file;
    private final int alignment;
    private final long mask;
    private final RangeLock locks = new RangeLock();
    private final AlignedBufferPool pool;

    public AlignedAccess(EngineFile file) {
        this.file = file;
        this.alignment = file.alignment();
        this.mask = alignment - 1L;
        this.pool = alignment > 1
                ? new AlignedBufferPool(Math.max(BOUNCE_SIZE, alignment), Math.max(alignment, 4096),
                        IDLE_BOUNCE_BUFFERS)
                : null;
    }

    public int alignment() {
        return alignment;
    }

    /**
     * Reads {@code dst.remaining()} bytes at {@code pos}; bytes past the end of
     * the file read as zero. {@code dst}'s position ends at its limit.
     */
    public void read(long pos, ByteBuffer dst) throws IOException {
        int len = dst.remaining();
        if (isAligned(pos) && isAligned(len) && usableDirectly(dst)) {
            fill(pos, dst);
            return;
        }
        long start = pos & ~mask;
        long end = alignUp(pos + len);
        int dstStart = dst.position();
        ByteBuffer b = pool.take();
        try {
            for (long cur = start; cur < end; ) {
                int n = (int) Math.min(end - cur, b.capacity());
                fill(cur, b.clear().limit(n));
                long from = Math.max(cur, pos);
                long to = Math.min(cur + n, pos + len);
                dst.put(dstStart + (int) (from - pos), b, (int) (from - cur), (int) (to - from));
                cur += n;
            }
        } finally {
            pool.give(b);
        }
        dst.position(dst.limit());
    }

    /** Writes all of {@code src} at {@code pos}; {@code src}'s position ends at its limit. */
    public void write(long pos, ByteBuffer src) throws IOException {
        int len = src.remaining();
        if (alignment == 1) {
            writeAll(pos, src);
        } else if (isAligned(pos) && isAligned(len)) {
            try (RangeLock.Held ignored = locks.lockShared(pos, pos + len)) {
                if (usableDirectly(src)) {
                    writeAll(pos, src);
                } else {
                    writeBounced(pos, src);
                }
            }
        } else {
            long start = pos & ~mask;
            long end = alignUp(pos + len);
            try (RangeLock.Held ignored = locks.lockExclusive(start, end)) {
                readModifyWrite(pos, src, start, end);
            }
        }
    }

    /**
     * Holds [offset, offset+length) for a space operation (zeroing, punching a
     * hole) so it cannot fall between the read and the write of an RMW that
     * would put the old bytes back.
     */
    public RangeLock.Held lockForSpaceOperation(long offset, long length) {
        return locks.lockShared(offset, offset + length);
    }

    private void writeBounced(long pos, ByteBuffer src) throws IOException {
        ByteBuffer b = pool.take();
        try {
            int srcPos = src.position();
            int done = 0;
            int len = src.remaining();
            while (done < len) {
                int n = Math.min(len - done, b.capacity());
                b.clear().put(0, src, srcPos + done, n).limit(n);
                writeAll(pos + done, b);
                done += n;
            }
            src.position(src.limit());
        } finally {
            pool.give(b);
        }
    }

    private void readModifyWrite(long pos, ByteBuffer src, long start, long end) throws IOException {
        int len = src.remaining();
        int srcPos = src.position();
        ByteBuffer b = pool.take();
        try {
            for (long cur = start; cur < end; ) {
                int n = (int) Math.min(end - cur, b.capacity());
                b.clear().limit(n);
                boolean partialHead = cur < pos;
                boolean partialTail = cur + n > pos + len;
                if (partialHead) {
                    fill(cur, b.limit(alignment).position(0));
                }
                if (partialTail && !(partialHead && n == alignment)) {
                    fill(cur + n - alignment, b.limit(n).position(n - alignment));
                }
                long from = Math.max(cur, pos);
                long to = Math.min(cur + n, pos + len);
                b.limit(n).put((int) (from - cur), src, srcPos + (int) (from - pos), (int) (to - from));
                writeAll(cur, b.position(0));
                cur += n;
            }
            src.position(src.limit());
        } finally {
            pool.give(b);
        }
    }

    /**
     * Reads into {@code buf} until it is full or the file ends, then zeroes the
     * rest. With O_DIRECT a short read that leaves an unaligned position can
     * only be the end of the file (the next read there would be refused), as
     * QEMU also assumes.
     */
    private void fill(long pos, ByteBuffer buf) throws IOException {
        int start = buf.position();
        while (buf.hasRemaining()) {
            int n = file.read(buf, pos + (buf.position() - start));
            if (n <= 0 || !isAligned(buf.position() - start)) {
                break;
            }
        }
        if (buf.hasRemaining()) {
            MemorySegment.ofBuffer(buf).fill((byte) 0);
            buf.position(buf.limit());
        }
    }

    private void writeAll(long pos, ByteBuffer src) throws IOException {
        long p = pos;
        while (src.hasRemaining()) {
            p += file.write(src, p);
        }
    }

    /** Whether the engine can take this buffer as it is: any buffer without O_DIRECT, else an aligned direct one. */
    private boolean usableDirectly(ByteBuffer buf) {
        if (alignment == 1) {
            return true;
        }
        return buf.isDirect() && isAligned(MemorySegment.ofBuffer(buf).address());
    }

    private boolean isAligned(long v) {
        return (v & mask) == 0;
    }

    private long alignUp(long v) {
        return (v + mask) & ~mask;
    }
}
