package io.jblock.cli.img;

import io.jblock.block.Errno;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The few libc calls image creation and {@code info} need and that the JDK
 * does not offer: {@code ftruncate} that grows a file without writing
 * (FileChannel can only grow by writing a byte, which allocates the last
 * block), {@code posix_fallocate} for preallocation=falloc, open file
 * description locks (QEMU's image locking), and {@code stat}'s
 * {@code st_blocks} for the "disk size". Failures keep the
 * errno, because qemu-img's messages are built from strerror and because
 * EFBIG gets a message of its own.
 *
 * <p>This is a stop-gap inside the img front end: when the engine offers
 * creation, fallocate and fstat, {@link RawCreator} and {@link ImageInfo} use
 * those instead.
 */
final class HostFile implements AutoCloseable {
    /** A failed call: the errno it set and a message in qemu's words. */
    static final class CallFailed extends IOException {
        private final int errno;

        CallFailed(int errno, String message) {
            super(message);
            this.errno = errno;
        }

        int errno() {
            return errno;
        }
    }

    private static final int O_RDWR = 02;
    private static final int O_CREAT = 0100;
    private static final int O_CLOEXEC = 02000000;
    private static final int EINTR = 4;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURED = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURED.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle FTRUNCATE = downcall("ftruncate",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG), CAPTURE_ERRNO);
    /** posix_fallocate returns the error number instead of setting errno. */
    private static final MethodHandle POSIX_FALLOCATE = downcall("posix_fallocate",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle PWRITE = downcall("pwrite",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle FSYNC = downcall("fsync",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle CLOSE = downcall("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle STAT = downcall("stat",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS), CAPTURE_ERRNO);
    private static final MethodHandle FCNTL_LOCK = downcall("fcntl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle STRERROR = downcall("strerror",
            FunctionDescriptor.of(ValueLayout.ADDRESS.withTargetLayout(MemoryLayout.sequenceLayout(4096,
                    ValueLayout.JAVA_BYTE)), ValueLayout.JAVA_INT));

    /**
     * Where st_blocks sits in struct stat: byte 64 on both Linux ABIs jblock
     * runs on (x86-64, whose struct is 144 bytes, and the generic layout of
     * aarch64, 128 bytes).
     */
    private static final long ST_BLOCKS_OFFSET = 64;
    private static final long STAT_BUFFER_SIZE = 256;

    /** Open file description locks: owned by the open file, not the process, so two opens in one JVM conflict. */
    private static final int F_OFD_GETLK = 36;
    private static final int F_OFD_SETLK = 37;
    private static final short F_RDLCK = 0;
    private static final short F_WRLCK = 1;
    private static final short F_UNLCK = 2;
    /**
     * struct flock on Linux x86-64 and aarch64: l_type (short) at 0, l_whence
     * (short) at 2, l_start at 8, l_len at 16, l_pid (int) at 24; 32 bytes.
     */
    private static final long FLOCK_SIZE = 32;

    private final int fd;

    private HostFile(int fd) {
        this.fd = fd;
    }

    private static MethodHandle downcall(String symbol, FunctionDescriptor fd, Linker.Option... options) {
        MemorySegment address = LINKER.defaultLookup().find(symbol).orElseThrow(
                () -> new UnsatisfiedLinkError("libc has no " + symbol));
        return LINKER.downcallHandle(address, fd, options);
    }

    /** open(O_RDWR | O_CREAT, 0644), as qemu creates image files; the error is "Could not create 'name': ...". */
    static HostFile create(String path) throws CallFailed {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURED);
            MemorySegment cpath = arena.allocateFrom(path);
            int fd;
            do {
                fd = (int) OPEN.invokeExact(state, cpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            } while (fd < 0 && errno(state) == EINTR);
            if (fd < 0) {
                int e = errno(state);
                throw new CallFailed(e, "Could not create '" + path + "': " + strerror(e));
            }
            return new HostFile(fd);
        } catch (CallFailed e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("open(2) through FFM failed", t);
        }
    }

    /** ftruncate(2); {@code what} starts the message ("Could not resize file"). */
    void truncate(long length, String what) throws CallFailed {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURED);
            int rc = (int) FTRUNCATE.invokeExact(state, fd, length);
            if (rc != 0) {
                int e = errno(state);
                throw new CallFailed(e, what + ": " + strerror(e));
            }
        } catch (CallFailed e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("ftruncate(2) through FFM failed", t);
        }
    }

    /** posix_fallocate(3): reserves blocks, growing the file; the kernel keeps them unwritten (reading as holes). */
    void fallocate(long offset, long length, String what) throws CallFailed {
        try {
            int rc = (int) POSIX_FALLOCATE.invokeExact(fd, offset, length);
            if (rc != 0) {
                throw new CallFailed(rc, what + ": " + strerror(rc));
            }
        } catch (CallFailed e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("posix_fallocate(3) through FFM failed", t);
        }
    }

    /** Writes {@code length} zero bytes at {@code offset}, in pieces of at most {@code chunk}. */
    void writeZeroes(long offset, long length, int chunk, String what) throws CallFailed {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURED);
            MemorySegment zeroes = arena.allocate(Math.min(chunk, Math.max(length, 1)), 4096);
            long done = 0;
            while (done < length) {
                long n = Math.min(length - done, zeroes.byteSize());
                long w = (long) PWRITE.invokeExact(state, fd, zeroes, n, offset + done);
                if (w < 0) {
                    int e = errno(state);
                    if (e == EINTR) {
                        continue;
                    }
                    throw new CallFailed(e, what + ": " + strerror(e));
                }
                done += w;
            }
        } catch (CallFailed e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("pwrite(2) through FFM failed", t);
        }
    }

    /** fsync(2). */
    void sync(String what) throws CallFailed {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURED);
            int rc = (int) FSYNC.invokeExact(state, fd);
            if (rc != 0) {
                int e = errno(state);
                throw new CallFailed(e, what + ": " + strerror(e));
            }
        } catch (CallFailed e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("fsync(2) through FFM failed", t);
        }
    }

    /** Takes a shared lock on one byte, as QEMU marks a permission it holds or refuses to share. */
    void lockByte(long offset) throws CallFailed {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURED);
            MemorySegment fl = flock(arena, F_RDLCK, offset);
            int rc = (int) FCNTL_LOCK.invokeExact(state, fd, F_OFD_SETLK, fl);
            if (rc != 0) {
                int e = errno(state);
                throw new CallFailed(e, "Failed to lock byte " + offset);
            }
        } catch (CallFailed e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("fcntl(F_OFD_SETLK) through FFM failed", t);
        }
    }

    /** Whether another open file holds a lock on this byte (QEMU's qemu_lock_fd_test with exclusive=true). */
    boolean byteLockedByOthers(long offset) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURED);
            MemorySegment fl = flock(arena, F_WRLCK, offset);
            int rc = (int) FCNTL_LOCK.invokeExact(state, fd, F_OFD_GETLK, fl);
            return rc == 0 && fl.get(ValueLayout.JAVA_SHORT, 0) != F_UNLCK;
        } catch (Throwable t) {
            throw new IllegalStateException("fcntl(F_OFD_GETLK) through FFM failed", t);
        }
    }

    private static MemorySegment flock(Arena arena, short type, long offset) {
        MemorySegment fl = arena.allocate(FLOCK_SIZE, 8);
        fl.set(ValueLayout.JAVA_SHORT, 0, type);
        fl.set(ValueLayout.JAVA_SHORT, 2, (short) 0);
        fl.set(ValueLayout.JAVA_LONG, 8, offset);
        fl.set(ValueLayout.JAVA_LONG, 16, 1);
        return fl;
    }

    @Override
    public void close() {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close(2) through FFM failed", t);
        }
    }

    /** st_blocks * 512 of {@code path} (what qemu calls the allocated file size), -1 if stat fails. */
    static long allocatedSize(String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURED);
            MemorySegment buf = arena.allocate(STAT_BUFFER_SIZE, 8);
            int rc = (int) STAT.invokeExact(state, arena.allocateFrom(path), buf);
            if (rc != 0) {
                return -1;
            }
            return buf.get(ValueLayout.JAVA_LONG, ST_BLOCKS_OFFSET) * 512;
        } catch (Throwable t) {
            throw new IllegalStateException("stat(2) through FFM failed", t);
        }
    }

    /** glibc's text for an errno: the same words qemu prints. */
    static String strerror(int errno) {
        try {
            return ((MemorySegment) STRERROR.invokeExact(errno)).getString(0);
        } catch (Throwable t) {
            return Errno.of(errno).number() == errno ? Errno.of(errno).text() : "Unknown error " + errno;
        }
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }
}
