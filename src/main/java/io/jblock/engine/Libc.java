package io.jblock.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

/**
 * The few Linux system calls the file protocol needs and FileChannel does not
 * offer, called through FFM (no JNI): open, close, fallocate, lseek with
 * SEEK_DATA/SEEK_HOLE, fstat and ftruncate for open files; and for creating
 * image files, open with O_CREAT, posix_fallocate, pwrite, fsync and open file
 * description locks. errno is captured by the linker right after each call,
 * so nothing the JVM does in between can clobber it. This is the one place
 * jblock binds libc.
 *
 * <p>Constants are the values of Linux with glibc on x86_64 and aarch64 (both
 * use the asm-generic numbers for everything here). A downcall pins the
 * virtual thread's carrier while it runs: these calls are metadata operations
 * (fallocate of a range, a seek, a stat), and the data path of virtual
 * threads stays on FileChannel where the JDK compensates for the blocked
 * carrier; pread, pwrite and fdatasync here are for platform threads.
 */
final class Libc {
    // ---- open(2) flags (asm-generic/fcntl.h)
    /** Open for reading only. */
    static final int O_RDONLY = 0;
    /** Open for reading and writing. */
    static final int O_RDWR = 2;
    /** Create the file if it does not exist (with the mode given to open); octal 0100. */
    static final int O_CREAT = 0x40;
    /** Close the descriptor on exec, so child processes (qemu-img in tests) do not inherit it; octal 02000000. */
    static final int O_CLOEXEC = 0x80000;
    /**
     * Bypass the page cache. One of the few flags that differ: x86_64 has the
     * asm-generic 040000, aarch64 its own 0200000 (arch/arm64/include/uapi/asm/fcntl.h).
     */
    static final int O_DIRECT = isAarch64() ? 0x10000 : 0x4000;

    // ---- lseek(2) whence values (linux/fs.h); also struct flock's l_whence
    /** Offsets count from the start of the file. */
    static final int SEEK_SET = 0;
    /** Seek to the first byte of data at or after the offset. */
    static final int SEEK_DATA = 3;
    /** Seek to the first hole at or after the offset; the end of the file counts as a hole. */
    static final int SEEK_HOLE = 4;

    // ---- fallocate(2) modes (linux/falloc.h)
    /** Mode 0: allocate blocks for the range, growing the file if it ends past the end. */
    static final int FALLOC_ALLOCATE = 0;
    /** Do not change the file size even if the range ends past the end. */
    static final int FALLOC_FL_KEEP_SIZE = 0x01;
    /** Deallocate the range; it reads as zero afterwards. Must be combined with KEEP_SIZE. */
    static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    /** Make the range read as zero, keeping (or converting to unwritten) its blocks allocated. */
    static final int FALLOC_FL_ZERO_RANGE = 0x10;

    // ---- fcntl(2) open file description locks (asm-generic/fcntl.h)
    /**
     * Ask whether a lock could be placed; the struct comes back with the
     * conflicting lock's type, or F_UNLCK. Open file description locks belong
     * to the open file, not the process, so two opens in one JVM conflict as
     * two processes do (classic POSIX locks would not, and would all drop
     * when any descriptor of the file is closed).
     */
    static final int F_OFD_GETLK = 36;
    /** Place or remove a lock without waiting; EAGAIN when another open file holds a conflicting one. */
    static final int F_OFD_SETLK = 37;
    /** l_type of a shared (read) lock. */
    static final short F_RDLCK = 0;
    /** l_type of an exclusive (write) lock. */
    static final short F_WRLCK = 1;
    /** l_type of no lock: what F_OFD_GETLK answers when nothing is in the way. */
    static final short F_UNLCK = 2;

    // ---- struct flock (asm-generic/fcntl.h), the same on x86_64 and aarch64
    /** The whole struct: l_type, l_whence, padding, l_start, l_len, l_pid, padding. */
    static final long FLOCK_SIZE = 32;
    /** l_type (short): F_RDLCK, F_WRLCK or F_UNLCK. */
    static final long FLOCK_TYPE_OFFSET = 0;
    /** l_whence (short): what l_start counts from. */
    static final long FLOCK_WHENCE_OFFSET = 2;
    /** l_start (off_t): the first byte of the range. */
    static final long FLOCK_START_OFFSET = 8;
    /** l_len (off_t): the number of bytes; 0 would mean "to the end of the file, however long". */
    static final long FLOCK_LEN_OFFSET = 16;
    /** l_pid (int): must be 0 for open file description locks. */
    static final long FLOCK_PID_OFFSET = 24;

    // ---- errno values (asm-generic/errno-base.h, asm-generic/errno.h)
    /** Interrupted by a signal: retry. */
    static final int EINTR = 4;
    /** A non-blocking lock is held by someone else (also EWOULDBLOCK). */
    static final int EAGAIN = 11;
    /** lseek SEEK_DATA/SEEK_HOLE: no data (or no hole) at or after the offset before the end of file. */
    static final int ENXIO = 6;
    /** fallocate on something that is not a regular file or block device. */
    static final int ENODEV = 19;
    /** An argument the file system does not accept: an unknown whence or fallocate mode, an unaligned range. */
    static final int EINVAL = 22;
    /** The kernel has no such system call. */
    static final int ENOSYS = 38;
    /** The file system does not support the operation (EOPNOTSUPP and ENOTSUP are the same on Linux). */
    static final int EOPNOTSUPP = 95;

    // ---- struct stat (asm/stat.h); only the fields read here, at offsets shared by x86_64 and aarch64
    /** Enough room for struct stat on both architectures (x86_64: 144 bytes, aarch64: 128). */
    static final long STAT_SIZE = 256;
    /** st_size: the file's length in bytes (after dev, ino, nlink/mode and ids on both). */
    static final long STAT_SIZE_OFFSET = 48;
    /** st_blocks: 512-byte units allocated, whatever the file system's block size. */
    static final long STAT_BLOCKS_OFFSET = 64;
    /** st_mode: x86_64 puts it after st_nlink (8 bytes), aarch64 before st_nlink (4 bytes). */
    static final long STAT_MODE_OFFSET = isAarch64() ? 16 : 24;
    /** The file type bits of st_mode. */
    static final int S_IFMT = 0170000;
    /** st_mode file type of a regular file. */
    static final int S_IFREG = 0100000;
    /** st_mode file type of a character device (/dev/null, /dev/zero). */
    static final int S_IFCHR = 0020000;
    /** st_mode file type of a block device (a disk, a partition, a loop device). */
    static final int S_IFBLK = 0060000;

    /** What fstat tells about a file. */
    record Stat(int mode, long size, long blocks) {
        boolean isRegularFile() {
            return (mode & S_IFMT) == S_IFREG;
        }

        boolean isDevice() {
            return (mode & S_IFMT) == S_IFCHR || (mode & S_IFMT) == S_IFBLK;
        }
    }

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    /** The layout errno is captured into; the engine's other bindings (io_uring) share it. */
    static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    /** Downcall option: save errno into a {@link #CAPTURE} segment passed first. */
    static final Linker.Option SAVE_ERRNO = Linker.Option.captureCallState("errno");

    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong OFF_T = ValueLayout.JAVA_LONG;
    private static final ValueLayout PTR = ValueLayout.ADDRESS;

    /*
     * Each downcall handle is bound the first time it is used, in a holder class of its own: the JVM
     * initialises a class on first access, exactly once and thread-safely, and the JIT then treats the
     * static final handle as a constant. Binding one spins a few dozen method-handle classes, so binding
     * all of them when Libc loads cost every command (img info uses four of the fourteen) ~185 classes.
     */

    /** int open(const char *path, int flags, ...): variadic after flags; the mode only counts with O_CREAT. */
    private static final class Open {
        static final MethodHandle H = bind("open", FunctionDescriptor.of(INT, PTR, INT, INT),
                SAVE_ERRNO, Linker.Option.firstVariadicArg(2));
    }

    /** int posix_fallocate(int fd, off_t offset, off_t len): returns the error number; errno is left alone. */
    private static final class PosixFallocate {
        static final MethodHandle H = bind("posix_fallocate", FunctionDescriptor.of(INT, INT, OFF_T, OFF_T));
    }

    /** ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset). */
    private static final class Pwrite {
        static final MethodHandle H = bind("pwrite", FunctionDescriptor.of(OFF_T, INT, PTR, OFF_T, OFF_T),
                SAVE_ERRNO);
    }

    /** int fsync(int fd). */
    private static final class Fsync {
        static final MethodHandle H = bind("fsync", FunctionDescriptor.of(INT, INT), SAVE_ERRNO);
    }

    /** ssize_t pread(int fd, void *buf, size_t count, off_t offset). */
    private static final class Pread {
        static final MethodHandle H = bind("pread", FunctionDescriptor.of(OFF_T, INT, PTR, OFF_T, OFF_T),
                SAVE_ERRNO);
    }

    /** int fdatasync(int fd). */
    private static final class Fdatasync {
        static final MethodHandle H = bind("fdatasync", FunctionDescriptor.of(INT, INT), SAVE_ERRNO);
    }

    /** int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags). */
    private static final class SyncFileRange {
        static final MethodHandle H = bind("sync_file_range", FunctionDescriptor.of(INT, INT, OFF_T, OFF_T, INT),
                SAVE_ERRNO);
    }

    /** sync_file_range's flag that starts writeback of the dirty pages and does not wait for it. */
    static final int SYNC_FILE_RANGE_WRITE = 2;

    /** int fcntl(int fd, int cmd, ...): variadic after cmd; here the argument is a struct flock pointer. */
    private static final class FcntlLock {
        static final MethodHandle H = bind("fcntl", FunctionDescriptor.of(INT, INT, INT, PTR),
                SAVE_ERRNO, Linker.Option.firstVariadicArg(2));
    }

    /** int close(int fd). */
    private static final class Close {
        static final MethodHandle H = bind("close", FunctionDescriptor.of(INT, INT), SAVE_ERRNO);
    }

    /** int fallocate(int fd, int mode, off_t offset, off_t len). */
    private static final class Fallocate {
        static final MethodHandle H = bind("fallocate", FunctionDescriptor.of(INT, INT, INT, OFF_T, OFF_T),
                SAVE_ERRNO);
    }

    /** off_t lseek(int fd, off_t offset, int whence). */
    private static final class Lseek {
        static final MethodHandle H = bind("lseek", FunctionDescriptor.of(OFF_T, INT, OFF_T, INT), SAVE_ERRNO);
    }

    /** int fstat(int fd, struct stat *st). */
    private static final class Fstat {
        static final MethodHandle H = bind("fstat", FunctionDescriptor.of(INT, INT, PTR), SAVE_ERRNO);
    }

    /** int ftruncate(int fd, off_t length). */
    private static final class Ftruncate {
        static final MethodHandle H = bind("ftruncate", FunctionDescriptor.of(INT, INT, OFF_T), SAVE_ERRNO);
    }

    /** char *strerror(int): glibc's text for an errno, the text QEMU prints. */
    private static final class Strerror {
        static final MethodHandle H = bind("strerror", FunctionDescriptor.of(PTR, INT));
    }

    private Libc() {
    }

    /** A downcall handle for a libc function; the one place the engine binds native symbols. */
    static MethodHandle bind(String name, FunctionDescriptor fd, Linker.Option... options) {
        MemorySegment symbol = LIBC.find(name).orElseThrow(
                () -> new UnsatisfiedLinkError("libc has no symbol '" + name + "'"));
        return LINKER.downcallHandle(symbol, fd, options);
    }

    private static boolean isAarch64() {
        String arch = System.getProperty("os.arch");
        return arch.equals("aarch64") || arch.equals("arm64");
    }

    /** A downcall that captures errno into {@code state}; returns the call's result, negative on failure. */
    @FunctionalInterface
    private interface Downcall {
        long invoke(MemorySegment state) throws Throwable;
    }

    /** Whether a call interrupted by a signal is made again, or reported as EINTR. */
    private enum OnEintr { RETRY, FAIL }

    /**
     * Makes a system call that returns -1 and sets errno on failure: errno
     * becomes an {@link ErrnoException} named {@code call}; a failure to link
     * or run the downcall itself is a bug, not an I/O error.
     */
    private static long syscall(String call, OnEintr onEintr, Downcall downcall) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                long r = downcall.invoke(state);
                if (r >= 0) {
                    return r;
                }
                int e = errno(state);
                if (e != EINTR || onEintr == OnEintr.FAIL) {
                    throw new ErrnoException(call, e);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageFailure(call, t);
        }
    }

    /** open(2) without O_CREAT; returns the file descriptor. */
    static int open(Path path, int flags) throws ErrnoException {
        return open(path.toString(), flags, 0);
    }

    /**
     * open(2), retried on EINTR; returns the file descriptor. The path is a
     * string, not a {@link Path}, where the name must reach the kernel as
     * given: Path drops a trailing '/', which changes what open does.
     *
     * @param mode the permissions of a file O_CREAT creates, before the umask
     */
    static int open(String path, int flags, int mode) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cpath = arena.allocateFrom(path);
            return (int) syscall("open", OnEintr.RETRY, state -> (int) Open.H.invokeExact(state, cpath, flags, mode));
        }
    }

    /** close(2); errors are ignored, as there is nothing left to do with the descriptor. */
    static void close(int fd) {
        try {
            syscall("close", OnEintr.FAIL, state -> (int) Close.H.invokeExact(state, fd));
        } catch (ErrnoException ignored) {
            // Not retried on EINTR either: Linux has released the descriptor already.
        }
    }

    /** fallocate(2), retried on EINTR. */
    static void fallocate(int fd, int mode, long offset, long length) throws ErrnoException {
        syscall("fallocate(" + fallocateModeName(mode) + ")", OnEintr.RETRY,
                state -> (int) Fallocate.H.invokeExact(state, fd, mode, offset, length));
    }

    /** lseek(2); returns the new offset. */
    static long lseek(int fd, long offset, int whence) throws ErrnoException {
        String call = whence == SEEK_DATA ? "lseek(SEEK_DATA)" : whence == SEEK_HOLE ? "lseek(SEEK_HOLE)" : "lseek";
        return syscall(call, OnEintr.FAIL, state -> (long) Lseek.H.invokeExact(state, fd, offset, whence));
    }

    /** fstat(2). */
    static Stat fstat(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(STAT_SIZE, 8);
            syscall("fstat", OnEintr.FAIL, state -> (int) Fstat.H.invokeExact(state, fd, st));
            return new Stat(st.get(ValueLayout.JAVA_INT, STAT_MODE_OFFSET),
                    st.get(ValueLayout.JAVA_LONG, STAT_SIZE_OFFSET),
                    st.get(ValueLayout.JAVA_LONG, STAT_BLOCKS_OFFSET));
        }
    }

    /** ftruncate(2): shrinks, or grows with a hole, retried on EINTR. */
    static void ftruncate(int fd, long length) throws ErrnoException {
        syscall("ftruncate", OnEintr.RETRY, state -> (int) Ftruncate.H.invokeExact(state, fd, length));
    }

    /**
     * posix_fallocate(3): reserves the blocks of the range, growing the file
     * if it ends past the end. Where the file system has no fallocate, glibc
     * writes a zero into every block instead, so this does not fail with
     * EOPNOTSUPP as {@link #fallocate} does. It returns the error number
     * rather than setting errno, hence no capture.
     */
    static void posixFallocate(int fd, long offset, long length) throws ErrnoException {
        int r;
        try {
            do {
                r = (int) PosixFallocate.H.invokeExact(fd, offset, length);
            } while (r == EINTR);
        } catch (Throwable t) {
            throw linkageFailure("posix_fallocate", t);
        }
        if (r != 0) {
            throw new ErrnoException("posix_fallocate", r);
        }
    }

    /** pwrite(2) of the first {@code length} bytes of {@code buf}, retried on EINTR; returns the bytes written. */
    static long pwrite(int fd, MemorySegment buf, long length, long offset) throws ErrnoException {
        return syscall("pwrite", OnEintr.RETRY, state -> (long) Pwrite.H.invokeExact(state, fd, buf, length, offset));
    }

    /** pread(2) into the first {@code length} bytes of {@code buf}, retried on EINTR; returns the bytes read, 0 at the end. */
    static long pread(int fd, MemorySegment buf, long length, long offset) throws ErrnoException {
        return syscall("pread", OnEintr.RETRY, state -> (long) Pread.H.invokeExact(state, fd, buf, length, offset));
    }

    /** fdatasync(2). Not retried on EINTR: the caller's flush fails, as QEMU's does. */
    static void fdatasync(int fd) throws ErrnoException {
        syscall("fdatasync", OnEintr.FAIL, state -> (int) Fdatasync.H.invokeExact(state, fd));
    }

    /**
     * sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE): starts writing the
     * whole file's dirty pages back and returns without waiting. Only WRITE:
     * the WAIT flags check the file's writeback error and so would take it
     * from the next fdatasync, which must report it.
     */
    static void startWriteback(int fd) throws ErrnoException {
        syscall("sync_file_range", OnEintr.RETRY,
                state -> (int) SyncFileRange.H.invokeExact(state, fd, 0L, 0L, SYNC_FILE_RANGE_WRITE));
    }

    /** fsync(2): data and all metadata, for a file just created and filled. */
    static void fsync(int fd) throws ErrnoException {
        syscall("fsync", OnEintr.FAIL, state -> (int) Fsync.H.invokeExact(state, fd));
    }

    /** fcntl(F_OFD_SETLK): places a lock of {@code type} on {@code length} bytes at {@code start}, without waiting. */
    static void setLock(int fd, short type, long start, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fl = flock(arena, type, start, length);
            syscall("fcntl(F_OFD_SETLK)", OnEintr.FAIL, state -> (int) FcntlLock.H.invokeExact(state, fd, F_OFD_SETLK,
                    fl));
        }
    }

    /**
     * fcntl(F_OFD_GETLK): the type of a lock another open file holds that
     * would conflict with one of {@code type} on the range, or F_UNLCK.
     */
    static short conflictingLock(int fd, short type, long start, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fl = flock(arena, type, start, length);
            syscall("fcntl(F_OFD_GETLK)", OnEintr.FAIL, state -> (int) FcntlLock.H.invokeExact(state, fd, F_OFD_GETLK,
                    fl));
            return fl.get(ValueLayout.JAVA_SHORT, FLOCK_TYPE_OFFSET);
        }
    }

    private static MemorySegment flock(Arena arena, short type, long start, long length) {
        MemorySegment fl = arena.allocate(FLOCK_SIZE, 8); // zeroed: l_pid and the padding are 0
        fl.set(ValueLayout.JAVA_SHORT, FLOCK_TYPE_OFFSET, type);
        fl.set(ValueLayout.JAVA_SHORT, FLOCK_WHENCE_OFFSET, (short) SEEK_SET);
        fl.set(ValueLayout.JAVA_LONG, FLOCK_START_OFFSET, start);
        fl.set(ValueLayout.JAVA_LONG, FLOCK_LEN_OFFSET, length);
        fl.set(ValueLayout.JAVA_INT, FLOCK_PID_OFFSET, 0);
        return fl;
    }

    /** glibc's strerror text, e.g. "Operation not supported". */
    static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) Strerror.H.invokeExact(errno);
            // The result points into glibc's static tables; reading stops at the terminating NUL.
            return s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            throw linkageFailure("strerror", t);
        }
    }

    static String fallocateModeName(int mode) {
        if (mode == FALLOC_ALLOCATE) {
            return "0";
        }
        StringBuilder sb = new StringBuilder();
        if ((mode & FALLOC_FL_PUNCH_HOLE) != 0) {
            sb.append("PUNCH_HOLE|");
        }
        if ((mode & FALLOC_FL_ZERO_RANGE) != 0) {
            sb.append("ZERO_RANGE|");
        }
        if ((mode & FALLOC_FL_KEEP_SIZE) != 0) {
            sb.append("KEEP_SIZE|");
        }
        return sb.substring(0, sb.length() - 1);
    }

    /**
     * The file system (not the disk) says no: EOPNOTSUPP for a mode it lacks,
     * EINVAL for a mode or range it rejects, ENOSYS for a kernel without the
     * call, ENODEV for a file that is not a regular one (QEMU treats the same
     * set as ENOTSUP). The one rule for every engine's fallocate and seeks.
     */
    static boolean isRefusedByFileSystem(int errno) {
        return errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS || errno == ENODEV;
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    static IllegalStateException linkageFailure(String call, Throwable t) {
        return new IllegalStateException("native call " + call + " failed to run: " + t, t);
    }
}
