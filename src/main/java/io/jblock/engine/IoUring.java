package io.jblock.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * One io_uring instance, through FFM: io_uring_setup and io_uring_enter by
 * syscall(2) (glibc has no wrappers), and the three shared memory areas the
 * kernel exposes with mmap: the submission queue ring, the completion queue
 * ring and the array of submission queue entries (SQEs).
 *
 * <p>This class knows the kernel ABI and nothing else: it fills SQEs, makes
 * them visible to the kernel, submits, waits and reaps completions. Who may
 * submit when, and who waits for what, is {@link IoUringRing}'s business.
 * It is not thread safe: one thread at a time queues SQEs ({@link #queue},
 * under the owner's lock), and one thread (the ring's owner) enters the
 * kernel ({@link #enter}) and reaps ({@link #reap}); the sides share only
 * the memory the kernel shares with them, with the orderings commented at
 * each access.
 *
 * <p>All structures are those of include/uapi/linux/io_uring.h, identical on
 * x86_64 and aarch64 (fixed-width fields, no architecture-dependent padding).
 */
final class IoUring implements AutoCloseable {
    // ---- system call numbers. io_uring came after the syscall tables were unified (5.1), so
    // x86_64 and aarch64 (asm-generic/unistd.h) both number them 425 and 426.
    /** io_uring_setup(u32 entries, struct io_uring_params *p): returns the ring's file descriptor. */
    static final long SYS_IO_URING_SETUP = 425;
    /** io_uring_enter(fd, u32 to_submit, u32 min_complete, u32 flags, sigset_t *sig, size_t sigsz). */
    static final long SYS_IO_URING_ENTER = 426;

    // ---- struct io_uring_params (120 bytes): filled in by io_uring_setup
    static final long PARAMS_SIZE = 120;
    /** u32 sq_entries: the submission ring's size the kernel chose (the request rounded up to a power of two). */
    static final long PARAMS_SQ_ENTRIES = 0;
    /** u32 cq_entries: the completion ring's size, twice sq_entries by default. */
    static final long PARAMS_CQ_ENTRIES = 4;
    /** u32 flags: IORING_SETUP_* asked for (never SQ polling: it would burn a core). */
    static final long PARAMS_FLAGS = 8;
    /** u32 features: IORING_FEAT_* the kernel has (not needed: everything used here is in 5.6). */
    static final long PARAMS_FEATURES = 20;
    /** struct io_sqring_offsets sq_off (40 bytes): where the SQ ring's fields sit in its mapping. */
    static final long PARAMS_SQ_OFF = 40;
    /** struct io_cqring_offsets cq_off (40 bytes): where the CQ ring's fields sit in its mapping. */
    static final long PARAMS_CQ_OFF = 80;

    // ---- struct io_sqring_offsets, relative to PARAMS_SQ_OFF; each value read is an offset into the SQ mapping
    /** u32 head: the kernel's consumer index; the kernel writes it, we read it. */
    static final long SQ_OFF_HEAD = 0;
    /** u32 tail: our producer index; we write it, the kernel reads it. */
    static final long SQ_OFF_TAIL = 4;
    /** u32 ring_mask: entries - 1, to turn an index into a slot. */
    static final long SQ_OFF_RING_MASK = 8;
    /** u32 ring_entries: the number of slots. */
    static final long SQ_OFF_RING_ENTRIES = 12;
    /** u32 flags: IORING_SQ_NEED_WAKEUP and friends, only meaningful with SQ polling (unused). */
    static final long SQ_OFF_FLAGS = 16;
    /** u32 dropped: SQEs the kernel found invalid and skipped. */
    static final long SQ_OFF_DROPPED = 20;
    /** u32 array: the indirection array, slot -> index into the SQE array. */
    static final long SQ_OFF_ARRAY = 24;

    // ---- struct io_cqring_offsets, relative to PARAMS_CQ_OFF; each value read is an offset into the CQ mapping
    /** u32 head: our consumer index; we write it, the kernel reads it. */
    static final long CQ_OFF_HEAD = 0;
    /** u32 tail: the kernel's producer index; the kernel writes it, we read it. */
    static final long CQ_OFF_TAIL = 4;
    /** u32 ring_mask: entries - 1. */
    static final long CQ_OFF_RING_MASK = 8;
    /** u32 ring_entries: the number of CQE slots. */
    static final long CQ_OFF_RING_ENTRIES = 12;
    /** u32 overflow: completions the kernel could not post because the ring was full. */
    static final long CQ_OFF_OVERFLOW = 16;
    /** u32 cqes: where the array of CQEs starts. */
    static final long CQ_OFF_CQES = 20;

    // ---- mmap offsets selecting which area of the ring fd is mapped
    /** The SQ ring (head, tail, mask, array...). */
    static final long IORING_OFF_SQ_RING = 0L;
    /** The CQ ring (head, tail, mask, CQEs...). */
    static final long IORING_OFF_CQ_RING = 0x8000000L;
    /** The array of SQEs. */
    static final long IORING_OFF_SQES = 0x10000000L;

    // ---- struct io_uring_sqe (64 bytes)
    static final long SQE_SIZE = 64;
    /** u8 opcode: IORING_OP_*. */
    static final long SQE_OPCODE = 0;
    /** u8 flags: IOSQE_* (links, drain, fixed file); 0 here. */
    static final long SQE_FLAGS = 1;
    /** u16 ioprio: request priority; 0. */
    static final long SQE_IOPRIO = 2;
    /** s32 fd: the file the operation works on. */
    static final long SQE_FD = 4;
    /** u64 off: the file offset. */
    static final long SQE_OFF = 8;
    /** u64 addr: the buffer's address for read/write; the length for fallocate. */
    static final long SQE_ADDR = 16;
    /** u32 len: the buffer's length for read/write; the mode for fallocate. */
    static final long SQE_LEN = 24;
    /** u32 op flags (a union): rw_flags for read/write (RWF_*), fsync_flags for fsync. */
    static final long SQE_OP_FLAGS = 28;
    /** u64 user_data: copied into the CQE, to match the completion to its request. */
    static final long SQE_USER_DATA = 32;
    /** u16 buf_index: registered buffer index, or buffer group (unused). */
    static final long SQE_BUF_INDEX = 40;
    /** u16 personality: registered credentials (unused). */
    static final long SQE_PERSONALITY = 42;
    /** s32 splice_fd_in / file_index (unused). */
    static final long SQE_SPLICE_FD_IN = 44;
    /** u64 addr3 (unused). */
    static final long SQE_ADDR3 = 48;
    /** u64 __pad2 (unused). */
    static final long SQE_PAD2 = 56;

    // ---- struct io_uring_cqe (16 bytes, without IORING_SETUP_CQE32)
    static final long CQE_SIZE = 16;
    /** u64 user_data: the SQE's user_data. */
    static final long CQE_USER_DATA = 0;
    /** s32 res: the operation's result, as the system call would return it; -errno on failure. */
    static final long CQE_RES = 8;
    /** u32 flags: IORING_CQE_F_* (buffer selection, more to come); unused here. */
    static final long CQE_FLAGS = 12;

    // ---- opcodes (enum io_uring_op)
    /** Does nothing; used to wake the completion thread at close. */
    static final byte IORING_OP_NOP = 0;
    /** fsync(2) or, with IORING_FSYNC_DATASYNC, fdatasync(2). Linux 5.1. */
    static final byte IORING_OP_FSYNC = 3;
    /** fallocate(2): off = offset, addr = length, len = mode. Linux 5.6. */
    static final byte IORING_OP_FALLOCATE = 17;
    /** pread(2) into one buffer: addr, len, off. Linux 5.6. */
    static final byte IORING_OP_READ = 22;
    /** pwrite(2) from one buffer: addr, len, off. Linux 5.6. */
    static final byte IORING_OP_WRITE = 23;

    /**
     * Setup flag (Linux 6.0): only one task ever submits, the one that set
     * the ring up; the kernel then skips the locking other submitters need.
     */
    static final int IORING_SETUP_SINGLE_ISSUER = 1 << 12;
    /**
     * Setup flag (Linux 6.1, with SINGLE_ISSUER): completion work is not run
     * by interrupting the submitting task but deferred until that task waits
     * with GETEVENTS: one wake-up per batch instead of one per request.
     */
    static final int IORING_SETUP_DEFER_TASKRUN = 1 << 13;

    /** fsync_flags: sync data only (and the metadata needed to read it back), as fdatasync. */
    static final int IORING_FSYNC_DATASYNC = 1;
    /** io_uring_enter flags: wait for min_complete completions before returning. */
    static final int IORING_ENTER_GETEVENTS = 1;

    /** Device or resource busy: io_uring_enter while overflowed completions are being flushed. */
    private static final int EBUSY = 16;

    // ---- mmap(2)
    private static final int PROT_READ = 0x1;
    private static final int PROT_WRITE = 0x2;
    /** The kernel and we see the same pages. */
    private static final int MAP_SHARED = 0x01;
    /** Fault the pages in now rather than on first touch. */
    private static final int MAP_POPULATE = 0x8000;
    /** What mmap returns on failure ((void *) -1). */
    private static final long MAP_FAILED = -1L;

    // Linking and errno capture are Libc's: one set of FFM plumbing for the engine.
    private static final StructLayout CAPTURE = Libc.CAPTURE;
    private static final Linker.Option SAVE_ERRNO = Libc.SAVE_ERRNO;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout PTR = ValueLayout.ADDRESS;

    /** long syscall(long number, ...): setup's variadic arguments are (u32 entries, params pointer). */
    private static final MethodHandle SYSCALL_SETUP = bind("syscall", FunctionDescriptor.of(LONG, LONG, INT, PTR),
            SAVE_ERRNO, Linker.Option.firstVariadicArg(1));
    /** syscall(SYS_io_uring_enter, fd, to_submit, min_complete, flags, sig, sigsz). */
    private static final MethodHandle SYSCALL_ENTER = bind("syscall",
            FunctionDescriptor.of(LONG, LONG, INT, INT, INT, INT, PTR, LONG), SAVE_ERRNO,
            Linker.Option.firstVariadicArg(1));
    private static final MethodHandle MMAP = bind("mmap",
            FunctionDescriptor.of(PTR, PTR, LONG, INT, INT, INT, LONG), SAVE_ERRNO);
    private static final MethodHandle MUNMAP = bind("munmap", FunctionDescriptor.of(INT, PTR, LONG), SAVE_ERRNO);

    /**
     * u32 access with memory ordering, for the indexes shared with the kernel.
     * Coordinates: (MemorySegment, long base offset); offsets are added to the base.
     */
    private static final VarHandle U32 = ValueLayout.JAVA_INT.varHandle();

    private final int ringFd;
    private final MemorySegment sqRing;
    private final MemorySegment cqRing;
    private final MemorySegment sqes;
    private final int sqEntries;
    private final int cqEntries;
    private final long sqHead;
    private final long sqTail;
    private final int sqMask;
    private final long sqArray;
    private final long cqHead;
    private final long cqTail;
    private final int cqMask;
    private final long cqes;
    private final Arena state = Arena.ofShared();
    /** errno of io_uring_enter; one thread at a time enters (the ring's owner). */
    private final MemorySegment submitErrno;
    /** Our copy of the SQ tail: only the submitting side writes it. */
    private int localSqTail;
    private boolean closed;

    private IoUring(int ringFd, MemorySegment params) throws ErrnoException {
        this.ringFd = ringFd;
        sqEntries = params.get(INT, PARAMS_SQ_ENTRIES);
        cqEntries = params.get(INT, PARAMS_CQ_ENTRIES);
        long sqOff = PARAMS_SQ_OFF;
        long cqOff = PARAMS_CQ_OFF;
        sqHead = u32(params, sqOff + SQ_OFF_HEAD);
        sqTail = u32(params, sqOff + SQ_OFF_TAIL);
        sqArray = u32(params, sqOff + SQ_OFF_ARRAY);
        cqHead = u32(params, cqOff + CQ_OFF_HEAD);
        cqTail = u32(params, cqOff + CQ_OFF_TAIL);
        cqes = u32(params, cqOff + CQ_OFF_CQES);
        MemorySegment sq = null;
        MemorySegment cq = null;
        try {
            sq = mmap(sqArray + 4L * sqEntries, IORING_OFF_SQ_RING);
            cq = mmap(cqes + CQE_SIZE * cqEntries, IORING_OFF_CQ_RING);
            sqes = mmap(SQE_SIZE * sqEntries, IORING_OFF_SQES);
        } catch (ErrnoException e) {
            unmap(sq);
            unmap(cq);
            throw e;
        }
        sqRing = sq;
        cqRing = cq;
        sqMask = sqRing.get(INT, u32(params, sqOff + SQ_OFF_RING_MASK));
        cqMask = cqRing.get(INT, u32(params, cqOff + CQ_OFF_RING_MASK));
        // Nobody else submits yet; plain read.
        localSqTail = sqRing.get(INT, sqTail);
        submitErrno = state.allocate(CAPTURE);
    }

    /**
     * io_uring_setup with room for at least {@code entries} submissions; fails
     * with the errno of the setup (ENOSYS without io_uring, EPERM where seccomp
     * or kernel.io_uring_disabled forbids it, EINVAL for a bad size).
     */
    static IoUring create(int entries) throws ErrnoException {
        return create(entries, 0);
    }

    /**
     * io_uring_setup with {@code flags} (IORING_SETUP_*); EINVAL where the
     * kernel does not know one of them.
     */
    static IoUring create(int entries, int flags) throws ErrnoException {
        MemorySegment params;
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            params = arena.allocate(PARAMS_SIZE, 8); // zeroed: no wanted sizes
            params.set(INT, PARAMS_FLAGS, flags);
            MemorySegment st = arena.allocate(CAPTURE);
            long r;
            try {
                r = (long) SYSCALL_SETUP.invokeExact(st, SYS_IO_URING_SETUP, entries, params);
            } catch (Throwable t) {
                throw linkageFailure("io_uring_setup", t);
            }
            if (r < 0) {
                throw new ErrnoException("io_uring_setup", errno(st));
            }
            fd = (int) r;
            try {
                return new IoUring(fd, params);
            } catch (ErrnoException | RuntimeException e) {
                Libc.close(fd);
                throw e;
            }
        }
    }

    int sqEntries() {
        return sqEntries;
    }

    int cqEntries() {
        return cqEntries;
    }

    /**
     * Writes one SQE into the next free slot of the submission queue and
     * publishes it (the SQ tail), without entering the kernel: the owner of
     * the ring submits queued entries in batches with {@link #enter}. The
     * caller holds the submission lock and has made sure a slot is free
     * (entries queued and not yet consumed by the kernel never exceed
     * sqEntries).
     */
    void queue(byte opcode, int fd, long off, long addr, int len, int opFlags, long userData) {
        // Acquire: the kernel stores head with release after it has consumed the SQEs before it,
        // so the slot we are about to reuse is no longer read by the kernel.
        int head = (int) U32.getAcquire(sqRing, sqHead);
        if (localSqTail - head >= sqEntries) {
            throw new IllegalStateException("io_uring submission queue full: " + (localSqTail - head) + " queued");
        }
        int slot = localSqTail & sqMask;
        long at = slot * SQE_SIZE;
        // Every field not set below (flags, ioprio, buf_index, personality, addr3...) is 0: the SQE is
        // cleared 8 bytes at a time (no slice, no allocation on this path).
        for (long i = 0; i < SQE_SIZE; i += 8) {
            sqes.set(LONG, at + i, 0L);
        }
        sqes.set(ValueLayout.JAVA_BYTE, at + SQE_OPCODE, opcode);
        sqes.set(INT, at + SQE_FD, fd);
        sqes.set(LONG, at + SQE_OFF, off);
        sqes.set(LONG, at + SQE_ADDR, addr);
        sqes.set(INT, at + SQE_LEN, len);
        sqes.set(INT, at + SQE_OP_FLAGS, opFlags);
        sqes.set(LONG, at + SQE_USER_DATA, userData);
        sqRing.set(INT, sqArray + 4L * slot, slot);
        localSqTail++;
        // Release: the SQE and array entry written above become visible to the kernel no later than
        // the new tail (the kernel loads tail with acquire).
        U32.setRelease(sqRing, sqTail, localSqTail);
    }

    /** Queues one SQE and submits it at once (one io_uring_enter): for callers that own no batching loop. */
    void submit(byte opcode, int fd, long off, long addr, int len, int opFlags, long userData) throws ErrnoException {
        queue(opcode, fd, off, addr, len, opFlags, userData);
        int done = 0;
        while (done < 1) {
            done += enter(1, 0, 0);
        }
    }

    /**
     * io_uring_enter: submits {@code toSubmit} queued SQEs and, with
     * {@code wait}, blocks the calling (platform) thread until at least one
     * completion is posted; either way pending completions are posted
     * (GETEVENTS). Returns how many SQEs the kernel consumed, which may be
     * fewer than asked when it is short of memory; the rest stay queued.
     * Transient failures (EINTR, EAGAIN, EBUSY) are retried.
     */
    int enter(int toSubmit, boolean wait) throws ErrnoException {
        return enter(toSubmit, wait ? 1 : 0, IORING_ENTER_GETEVENTS);
    }

    /** Blocks the calling (platform) thread until at least one completion is posted. */
    void awaitCompletions() throws ErrnoException {
        enter(0, 1, IORING_ENTER_GETEVENTS);
    }

    /** Receives one completion: its user_data and res. */
    @FunctionalInterface
    interface CompletionSink {
        void complete(long userData, int res);
    }

    /** Hands every posted completion to {@code sink} and frees their slots; returns how many. */
    int reap(CompletionSink sink) {
        // Only this side writes head: plain read of our own value.
        int head = cqRing.get(INT, cqHead);
        // Acquire: the kernel writes a CQE, then stores tail with release; loading tail with acquire makes
        // the CQEs before it visible to the reads below.
        int tail = (int) U32.getAcquire(cqRing, cqTail);
        int n = 0;
        while (head != tail) {
            long at = cqes + (long) (head & cqMask) * CQE_SIZE;
            long userData = cqRing.get(LONG, at + CQE_USER_DATA);
            int res = cqRing.get(INT, at + CQE_RES);
            head++;
            n++;
            // Release: our reads of the CQE happen before the kernel sees the slot free and reuses it.
            U32.setRelease(cqRing, cqHead, head);
            sink.complete(userData, res);
        }
        return n;
    }

    private int enter(int toSubmit, int minComplete, int flags) throws ErrnoException {
        String call = minComplete > 0 ? "io_uring_enter(GETEVENTS)" : "io_uring_enter";
        while (true) {
            long r;
            try {
                r = (long) SYSCALL_ENTER.invokeExact(submitErrno, SYS_IO_URING_ENTER, ringFd, toSubmit, minComplete,
                        flags, MemorySegment.NULL, 0L);
            } catch (Throwable t) {
                throw linkageFailure(call, t);
            }
            if (r >= 0) {
                return (int) r;
            }
            int e = errno(submitErrno);
            // EINTR: a signal; EAGAIN/EBUSY: the kernel is short of memory or has overflowed completions
            // to flush first. All transient: the SQEs stay queued and the call is made again.
            if (e != Libc.EINTR && e != Libc.EAGAIN && e != EBUSY) {
                throw new ErrnoException(call, e);
            }
            Thread.onSpinWait();
        }
    }

    /** Unmaps the rings and closes the ring's descriptor, which cancels anything still in flight. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        unmap(sqes);
        unmap(cqRing);
        unmap(sqRing);
        Libc.close(ringFd);
        state.close();
    }

    private MemorySegment mmap(long size, long offset) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(CAPTURE);
            MemorySegment p;
            try {
                p = (MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, size, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_POPULATE, ringFd, offset);
            } catch (Throwable t) {
                throw linkageFailure("mmap", t);
            }
            if (p.address() == MAP_FAILED) {
                throw new ErrnoException("mmap", errno(st));
            }
            return p.reinterpret(size);
        }
    }

    private static void unmap(MemorySegment m) {
        if (m == null) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(CAPTURE);
            int r = (int) MUNMAP.invokeExact(st, m, m.byteSize());
            if (r != 0) {
                throw new IllegalStateException("munmap of an io_uring area failed: " + Libc.strerror(errno(st)));
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageFailure("munmap", t);
        }
    }

    /** Reads a u32 offset from io_uring_params (unsigned, so widened without sign). */
    private static long u32(MemorySegment params, long at) {
        return Integer.toUnsignedLong(params.get(INT, at));
    }

    private static MethodHandle bind(String name, FunctionDescriptor fd, Linker.Option... options) {
        return Libc.bind(name, fd, options);
    }

    private static int errno(MemorySegment state) {
        return Libc.errno(state);
    }

    private static IllegalStateException linkageFailure(String call, Throwable t) {
        return Libc.linkageFailure(call, t);
    }
}
