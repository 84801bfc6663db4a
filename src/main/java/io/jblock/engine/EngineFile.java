package io.jblock.engine;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * An open file as an engine sees it: positional reads and writes, durability,
 * and the space operations (holes, zero ranges) the file protocol needs.
 * Buffers follow FileChannel's rules: reads and writes consume from position
 * to limit and move the position by what was transferred.
 *
 * <p>The space operations answer "unsupported" (false, or
 * UnsupportedOperationException for the seeks) only where the file system
 * refuses the operation itself (EOPNOTSUPP, EINVAL, ENOSYS, ENODEV), so the
 * caller can fall back; any other failure is an IOException.
 */
public interface EngineFile extends Closeable {
    /** Reads at {@code pos}; returns the bytes read, -1 at end of file. */
    int read(ByteBuffer dst, long pos) throws IOException;

    /** Writes at {@code pos}; returns the bytes written. */
    int write(ByteBuffer src, long pos) throws IOException;

    /** fdatasync(2). */
    void datasync() throws IOException;

    long size() throws IOException;

    /** ftruncate(2): grows with a hole or shrinks. */
    void truncate(long size) throws IOException;

    /** fallocate(PUNCH_HOLE|KEEP_SIZE): the range reads as zero and its blocks are freed; false where unsupported. */
    boolean punchHole(long offset, long length) throws IOException;

    /**
     * fallocate(ZERO_RANGE), with KEEP_SIZE when {@code keepSize}: the range
     * reads as zero and stays allocated; without KEEP_SIZE a range past the end
     * grows the file. False where unsupported.
     */
    boolean zeroRange(long offset, long length, boolean keepSize) throws IOException;

    /** fallocate mode 0 (reserve blocks, grow if past the end); false where unsupported. */
    boolean allocate(long offset, long length) throws IOException;

    /**
     * lseek(SEEK_DATA): the first data offset at or after {@code pos}, -1 when
     * there is none before the end; throws UnsupportedOperationException when
     * the file system cannot tell.
     */
    long seekData(long pos) throws IOException;

    /**
     * lseek(SEEK_HOLE): the first hole at or after {@code pos} (the end of file
     * counts as a hole), -1 when {@code pos} is at or past the end; throws
     * UnsupportedOperationException when the file system cannot tell.
     */
    long seekHole(long pos) throws IOException;

    /**
     * Starts writing the file's dirty page-cache pages to the device, without
     * waiting and without any durability meaning: a hint for a job that will
     * end with a real flush, so that flush finds little left to write.
     * Nothing by default.
     */
    default void startWriteback() throws IOException {
    }

    /** Bytes allocated on the host (st_blocks * 512), -1 when unknown. */
    long allocatedSize() throws IOException;

    /**
     * The alignment of buffer addresses, offsets and lengths this file needs:
     * 1 for ordinary opens, the probed O_DIRECT alignment for direct ones.
     */
    int alignment();
}
