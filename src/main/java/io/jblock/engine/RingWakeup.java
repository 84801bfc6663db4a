package io.jblock.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * An eventfd(2) that wakes a thread blocked in io_uring_enter: the ring
 * keeps a read of this eventfd in flight, and {@link #signal} (a write of 1
 * to the counter) completes it, which posts a completion and ends the wait.
 * The read consumes the counter, so signals that come together wake once.
 */
final class RingWakeup implements AutoCloseable {
    /** EFD_CLOEXEC: not inherited by programs the JVM starts. */
    private static final int EFD_CLOEXEC = 0x80000;
    private static final MethodHandle EVENTFD = Libc.bind("eventfd",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), Libc.SAVE_ERRNO);
    private static final MethodHandle WRITE = Libc.bind("write", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), Libc.SAVE_ERRNO);

    private final int fd;
    /**
     * The 8 bytes the ring's read fills, and the 8 bytes a signal writes. An
     * automatic arena: a read still in flight when the ring is torn down may
     * write here until the kernel has cancelled it, so the memory is never
     * freed explicitly.
     */
    private final MemorySegment readBuffer;
    private final MemorySegment one;
    private final Arena signalState = Arena.ofShared();
    private final MemorySegment signalErrno;

    RingWakeup() throws ErrnoException {
        Arena auto = Arena.ofAuto();
        readBuffer = auto.allocate(8, 8);
        one = auto.allocate(8, 8);
        one.set(ValueLayout.JAVA_LONG, 0, 1L);
        signalErrno = signalState.allocate(Libc.CAPTURE);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(Libc.CAPTURE);
            int r;
            try {
                r = (int) EVENTFD.invokeExact(st, 0, EFD_CLOEXEC);
            } catch (Throwable t) {
                throw Libc.linkageFailure("eventfd", t);
            }
            if (r < 0) {
                throw new ErrnoException("eventfd", Libc.errno(st));
            }
            fd = r;
        }
    }

    int fd() {
        return fd;
    }

    /** Where the ring's read of the counter goes: 8 bytes. */
    MemorySegment readBuffer() {
        return readBuffer;
    }

    /**
     * Adds 1 to the counter, which completes the ring's pending read. Called
     * by one thread at a time (the one that saw the owner asleep and cleared
     * the flag), so the errno buffer is not shared.
     */
    void signal() {
        long r;
        try {
            r = (long) WRITE.invokeExact(signalErrno, fd, one, 8L);
        } catch (Throwable t) {
            throw Libc.linkageFailure("write(eventfd)", t);
        }
        if (r != 8) {
            // Only EAGAIN (counter at its maximum, so a wake-up is due anyway) can happen here.
            int e = Libc.errno(signalErrno);
            if (e != Libc.EAGAIN) {
                throw new IllegalStateException("write to the io_uring wake-up eventfd failed: " + Libc.strerror(e));
            }
        }
    }

    @Override
    public void close() {
        Libc.close(fd);
        signalState.close();
    }
}
