package io.jblock.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Set;

/**
 * The default engine: positional FileChannel I/O. On a virtual thread the JDK
 * compensates for the blocked carrier while the call runs. Never interrupt a
 * thread that is in here: an interrupt closes the channel for everyone.
 */
public final class ThreadsEngine implements IoEngine {
    public static final ThreadsEngine INSTANCE = new ThreadsEngine();

    @Override
    public String name() {
        return "threads";
    }

    @Override
    public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
        Set<java.nio.file.OpenOption> opts = new java.util.HashSet<>(EnumSet.of(StandardOpenOption.READ));
        if (!readOnly) {
            opts.add(StandardOpenOption.WRITE);
        }
        if (direct) {
            opts.add(com.sun.nio.file.ExtendedOpenOption.DIRECT);
        }
        FileChannel ch = FileChannel.open(path, opts);
        return new ChannelFile(ch, direct ? directAlignment(path) : 1);
    }

    private static int directAlignment(Path path) throws IOException {
        long bs = java.nio.file.Files.getFileStore(path).getBlockSize();
        return (int) Math.max(512, Math.min(bs, 1 << 16));
    }

    /** A FileChannel; the space operations are not available through it. */
    static final class ChannelFile implements EngineFile {
        private final FileChannel ch;
        private final int alignment;

        ChannelFile(FileChannel ch, int alignment) {
            this.ch = ch;
            this.alignment = alignment;
        }

        @Override
        public int read(ByteBuffer dst, long pos) throws IOException {
            return ch.read(dst, pos);
        }

        @Override
        public int write(ByteBuffer src, long pos) throws IOException {
            return ch.write(src, pos);
        }

        @Override
        public void datasync() throws IOException {
            ch.force(false);
        }

        @Override
        public long size() throws IOException {
            return ch.size();
        }

        @Override
        public void truncate(long size) throws IOException {
            long cur = ch.size();
            if (size < cur) {
                ch.truncate(size);
            } else if (size > cur) {
                // FileChannel cannot grow a file without writing; one zero byte at the end leaves a hole before it.
                ch.write(ByteBuffer.allocate(1), size - 1);
            }
        }

        @Override
        public boolean punchHole(long offset, long length) {
            return false;
        }

        @Override
        public boolean zeroRange(long offset, long length) {
            return false;
        }

        @Override
        public boolean allocate(long offset, long length) {
            return false;
        }

        @Override
        public long seekData(long pos) {
            throw new UnsupportedOperationException("SEEK_DATA");
        }

        @Override
        public long seekHole(long pos) {
            throw new UnsupportedOperationException("SEEK_HOLE");
        }

        @Override
        public long allocatedSize() {
            return -1;
        }

        @Override
        public int alignment() {
            return alignment;
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }
}
