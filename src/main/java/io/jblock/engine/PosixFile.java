package io.jblock.engine;

import java.io.Closeable;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A host file opened with open(2) itself, for what the file protocol's
 * image creation needs and an {@link EngineFile} does not offer: O_CREAT
 * with a mode, posix_fallocate (which glibc completes by writing where the
 * file system cannot reserve blocks), fsync, and the open file description
 * locks by which QEMU processes keep off each other's images. Not a data
 * path: every call pins the virtual thread's carrier while it runs.
 *
 * <p>Failures are {@link ErrnoException}s, so the caller can word them as
 * QEMU does from the errno.
 */
public final class PosixFile implements Closeable {
    /** rw-r--r-- before the umask, the mode QEMU creates image files with. */
    private static final int IMAGE_FILE_MODE = 0644;
    /** The alignment of the zero buffer: what O_DIRECT would need, and a page for the kernel's copy. */
    private static final long ZERO_BUFFER_ALIGNMENT = 4096;

    private final int fd;

    private PosixFile(int fd) {
        this.fd = fd;
    }

    /**
     * Opens {@code path} read-write, creating it with mode 0644 (under the
     * umask) if it does not exist; an existing file keeps its contents and
     * permissions. The path goes to the kernel exactly as given.
     */
    public static PosixFile openOrCreate(String path) throws ErrnoException {
        return new PosixFile(Libc.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, IMAGE_FILE_MODE));
    }

    /**
     * Opens {@code path} read-only, for its open file description locks
     * alone: a read lock needs only read access, so an image the user may not
     * write can still be locked against writers.
     */
    public static PosixFile openForLocking(String path) throws ErrnoException {
        return new PosixFile(Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0));
    }

    /** ftruncate(2): shrinks, or grows with a hole. */
    public void truncate(long length) throws ErrnoException {
        Libc.ftruncate(fd, length);
    }

    /** posix_fallocate(3): the range's blocks are reserved (unwritten, reading as zero) and the file grows to cover it. */
    public void preallocate(long offset, long length) throws ErrnoException {
        Libc.posixFallocate(fd, offset, length);
    }

    /** Writes {@code length} zero bytes at {@code offset}, in writes of at most {@code chunk} bytes. */
    public void writeZeroes(long offset, long length, int chunk) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment zeroes = arena.allocate(Math.min(chunk, Math.max(length, 1)), ZERO_BUFFER_ALIGNMENT);
            long done = 0;
            while (done < length) {
                long n = Math.min(length - done, zeroes.byteSize());
                done += Libc.pwrite(fd, zeroes, n, offset + done);
            }
        }
    }

    /** fsync(2). */
    public void sync() throws ErrnoException {
        Libc.fsync(fd);
    }

    /**
     * Takes a shared lock on the byte at {@code offset}, held until the file
     * is closed. Fails (EAGAIN) only if another open file holds an exclusive
     * lock on it.
     */
    public void lockSharedByte(long offset) throws ErrnoException {
        Libc.setLock(fd, Libc.F_RDLCK, offset, 1);
    }

    /** Drops this file's lock on the byte at {@code offset}, if it has one. */
    public void unlockByte(long offset) throws ErrnoException {
        Libc.setLock(fd, Libc.F_UNLCK, offset, 1);
    }

    /**
     * Whether another open file (in this process or another) holds any lock
     * on the byte at {@code offset}: the test for an exclusive lock, which
     * every lock conflicts with. This file's own locks do not count.
     */
    public boolean isByteLockedByOthers(long offset) throws ErrnoException {
        return Libc.conflictingLock(fd, Libc.F_WRLCK, offset, 1) != Libc.F_UNLCK;
    }

    /** Closes the descriptor, dropping its locks. */
    @Override
    public void close() {
        Libc.close(fd);
    }
}
