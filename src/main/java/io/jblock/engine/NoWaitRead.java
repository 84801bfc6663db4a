package io.jblock.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * preadv2(2) with RWF_NOWAIT: a read that the page cache can serve at once,
 * made on the calling thread; otherwise EAGAIN, without waiting for the
 * disk. io_uring makes the same attempt first for every buffered read, but
 * on the thread that submits (the ring thread, see {@link IoUringRing}),
 * after the request has travelled there and before it travels back; a
 * buffered read of cached data is served here instead, with no hand-off
 * (see {@link IoUringFile#read}).
 *
 * <p>Only for descriptors without O_DIRECT: with O_DIRECT, RWF_NOWAIT only
 * refuses to wait for locks and allocation, and the call would still wait
 * for the device while holding the carrier.
 */
final class NoWaitRead {
    /** preadv2 flags: fail with EAGAIN rather than wait for data not in the page cache (Linux 4.14). */
    static final int RWF_NOWAIT = 0x00000008;
    /** The file system does not take RWF_NOWAIT (it answers EOPNOTSUPP). */
    static final int EOPNOTSUPP = 95;

    // ---- struct iovec (16 bytes on 64-bit Linux)
    /** void *iov_base: where the data goes. */
    static final long IOV_BASE = 0;
    /** size_t iov_len: how many bytes. */
    static final long IOV_LEN = 8;
    static final long IOVEC_SIZE = 16;

    /** ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags). */
    private static final MethodHandle PREADV2 = Libc.bind("preadv2",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), Libc.SAVE_ERRNO);

    private NoWaitRead() {
    }

    /**
     * Reads up to {@code len} bytes at {@code pos} into native memory at
     * {@code addr} if the page cache has (the first of) them: the bytes read
     * (0 at the end of the file; fewer than asked when only the first pages
     * are cached), or -errno: -EAGAIN when the data must come from the disk.
     */
    static long read(int fd, long addr, int len, long pos) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(IOVEC_SIZE + Libc.CAPTURE.byteSize(), 8);
            iov.set(ValueLayout.JAVA_LONG, IOV_BASE, addr);
            iov.set(ValueLayout.JAVA_LONG, IOV_LEN, len);
            MemorySegment state = iov.asSlice(IOVEC_SIZE, Libc.CAPTURE.byteSize());
            long r;
            try {
                r = (long) PREADV2.invokeExact(state, fd, iov, 1, pos, RWF_NOWAIT);
            } catch (Throwable t) {
                throw Libc.linkageFailure("preadv2", t);
            }
            return r >= 0 ? r : -Libc.errno(state);
        }
    }
}
