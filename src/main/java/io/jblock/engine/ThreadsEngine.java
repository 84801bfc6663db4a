package io.jblock.engine;

import com.sun.nio.file.ExtendedOpenOption;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.Set;

/**
 * The default engine: positional FileChannel I/O. On a virtual thread the JDK
 * compensates for the blocked carrier while the call runs. Never interrupt a
 * thread that is in here: an interrupt closes the channel for everyone.
 *
 * <p>Each open file has two descriptors on the same file. The FileChannel does
 * the data path (read, write, fdatasync) for virtual threads, where the JDK
 * compensates for the carrier it blocks. A FileChannel does not reveal its
 * descriptor without JDK internals, so for fallocate, lseek SEEK_DATA/SEEK_HOLE,
 * fstat and ftruncate the path is opened a second time with open(2) through
 * FFM ({@link Libc}), with the same access mode (and O_DIRECT if asked);
 * platform threads (the NBD server's workers, img bench with aio=threads) do
 * their pread, pwrite and fdatasync on that descriptor too.
 * The FFM open comes first: its errno gives the exact reason an open fails
 * (EISDIR, EACCES, ENOENT, EROFS), and its fstat refuses what is not a regular
 * file before anything else touches it.
 */
public final class ThreadsEngine implements IoEngine {
    public static final ThreadsEngine INSTANCE = new ThreadsEngine();

    /** O_DIRECT alignments tried, smallest first, as QEMU's raw_probe_alignment does (it stops at 4096). */
    private static final int[] CANDIDATE_ALIGNMENTS = {512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};

    @Override
    public String name() {
        return "threads";
    }

    @Override
    public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
        return open(path, readOnly, direct, false);
    }

    @Override
    public EngineFile openDevice(Path path, boolean readOnly, boolean direct) throws IOException {
        return open(path, readOnly, direct, true);
    }

    private EngineFile open(Path path, boolean readOnly, boolean direct, boolean device) throws IOException {
        // O_DIRECT here too, though these calls do not need it: a file system without O_DIRECT then
        // fails the open with EINVAL, before anything else is asked of it, as under QEMU.
        int fd = Libc.open(path, (readOnly ? Libc.O_RDONLY : Libc.O_RDWR) | Libc.O_CLOEXEC
                | (direct ? Libc.O_DIRECT : 0));
        try {
            Libc.Stat st = Libc.fstat(fd);
            if (device && !st.isDevice()) {
                throw new NotDeviceException(path.toString());
            }
            if (!device && !st.isRegularFile()) {
                throw new NotRegularFileException(path.toString());
            }
            Set<OpenOption> opts = new HashSet<>();
            opts.add(StandardOpenOption.READ);
            if (!readOnly) {
                opts.add(StandardOpenOption.WRITE);
            }
            if (direct) {
                opts.add(ExtendedOpenOption.DIRECT);
            }
            FileChannel ch = FileChannel.open(path, opts);
            try {
                return new ChannelFile(ch, fd, direct ? probeAlignment(ch) : 1, readOnly);
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /**
     * The smallest alignment an O_DIRECT read actually accepts. Both the kernel
     * (EINVAL) and the JDK refuse misaligned direct I/O; the JDK insists on the
     * file store's block size (4096 on the usual ext4) even where the kernel
     * would take 512, so the answer is whichever is stricter, found by trying.
     * As in QEMU, an error other than a refused alignment (a failing disk) says
     * nothing about alignment, and the alignment being tried is taken.
     */
    static int probeAlignment(FileChannel ch) throws IOException {
        int largest = CANDIDATE_ALIGNMENTS[CANDIDATE_ALIGNMENTS.length - 1];
        try (Arena arena = Arena.ofConfined()) {
            ByteBuffer buf = arena.allocate(largest, largest).asByteBuffer();
            for (int a : CANDIDATE_ALIGNMENTS) {
                try {
                    ch.read(buf.clear().limit(a), 0);
                    return a;
                } catch (IOException e) {
                    if (!isAlignmentRefusal(e)) {
                        return a;
                    }
                }
            }
        }
        throw new IOException("Could not find working O_DIRECT alignment (try cache.direct=off)");
    }

    /** The JDK says "... is not a multiple of the block size (N)"; the kernel says EINVAL. */
    private static boolean isAlignmentRefusal(IOException e) {
        String m = String.valueOf(e.getMessage());
        return m.contains("multiple of the block size") || m.contains("Invalid argument");
    }

    /** A FileChannel for data and an FFM descriptor on the same file for space operations. */
    static final class ChannelFile implements EngineFile {
        private final FileChannel ch;
        private final int fd;
        private final int alignment;
        private final FlushBatcher syncs = new FlushBatcher();
        private final boolean readOnly;

        ChannelFile(FileChannel ch, int fd, int alignment, boolean readOnly) {
            this.ch = ch;
            this.fd = fd;
            this.alignment = alignment;
            this.readOnly = readOnly;
        }

        @Override
        public int read(ByteBuffer dst, long pos) throws IOException {
            if (onPlatformThread(dst) && !dst.isReadOnly()) {
                if (pos < 0) {
                    throw new IllegalArgumentException("Negative position");
                }
                long n = Libc.pread(fd, MemorySegment.ofBuffer(dst), dst.remaining(), pos);
                Reference.reachabilityFence(dst);
                if (n == 0 && dst.hasRemaining()) {
                    return -1;
                }
                dst.position(dst.position() + (int) n);
                return (int) n;
            }
            return ch.read(dst, pos);
        }

        @Override
        public int write(ByteBuffer src, long pos) throws IOException {
            if (onPlatformThread(src) && !readOnly) {
                if (pos < 0) {
                    throw new IllegalArgumentException("Negative position");
                }
                long n = Libc.pwrite(fd, MemorySegment.ofBuffer(src), src.remaining(), pos);
                Reference.reachabilityFence(src);
                src.position(src.position() + (int) n);
                return (int) n;
            }
            return ch.write(src, pos);
        }

        /**
         * Whether a transfer of {@code buf} can go straight to pread/pwrite on
         * the FFM descriptor: a direct buffer (it has an address), on a
         * platform thread (a downcall would pin a virtual thread's carrier
         * without compensation, where FileChannel has the JDK add a carrier).
         * A FileChannel call on a platform thread is the same system call plus
         * the channel's bookkeeping: its set of threads in I/O, locked on every
         * call by every thread, which 32 writers on one file contend for.
         */
        private static boolean onPlatformThread(ByteBuffer buf) {
            return buf.isDirect() && !Thread.currentThread().isVirtual();
        }

        @Override
        public void datasync() throws IOException {
            // force(false) is fdatasync(2), and runs with the carrier compensated, unlike an FFM call;
            // on a platform thread the FFM call does the same without the channel's bookkeeping.
            // Callers that overlap share one (FlushBatcher): writethrough at depth 32 is a few, not 32.
            syncs.sync(() -> {
                if (!Thread.currentThread().isVirtual()) {
                    Libc.fdatasync(fd);
                } else {
                    ch.force(false);
                }
            });
        }

        @Override
        public void startWriteback() throws IOException {
            Libc.startWriteback(fd);
        }

        @Override
        public long size() throws IOException {
            return ch.size();
        }

        @Override
        public void truncate(long size) throws IOException {
            // Not FileChannel.truncate: it cannot grow, and growing by writing a byte would allocate a block.
            Libc.ftruncate(fd, size);
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

        private boolean fallocate(int mode, long offset, long length) throws IOException {
            try {
                Libc.fallocate(fd, mode, offset, length);
                return true;
            } catch (ErrnoException e) {
                if (Libc.isRefusedByFileSystem(e.errno())) {
                    return false;
                }
                throw e;
            }
        }

        @Override
        public long seekData(long pos) throws IOException {
            return seek(pos, Libc.SEEK_DATA);
        }

        @Override
        public long seekHole(long pos) throws IOException {
            return seek(pos, Libc.SEEK_HOLE);
        }

        private long seek(long pos, int whence) throws IOException {
            try {
                return Libc.lseek(fd, pos, whence);
            } catch (ErrnoException e) {
                if (e.errno() == Libc.ENXIO) {
                    return -1;
                }
                if (Libc.isRefusedByFileSystem(e.errno())) {
                    throw new UnsupportedOperationException(e.getMessage());
                }
                throw e;
            }
        }

        @Override
        public long allocatedSize() throws IOException {
            return Libc.fstat(fd).blocks() * 512;
        }

        @Override
        public int alignment() {
            return alignment;
        }

        /** The FFM descriptor, which the io_uring engine submits its operations on. */
        int fd() {
            return fd;
        }

        @Override
        public void close() throws IOException {
            try {
                ch.close();
            } finally {
                Libc.close(fd);
            }
        }
    }
}
