package io.jblock.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * Wraps an engine and counts what reaches the disk, per open file: reads,
 * writes, datasyncs and fallocates (punch, zero range, allocate). For tests
 * that check, say, that a flush with nothing written does no fdatasync.
 */
public final class InstrumentedEngine implements IoEngine {
    private final IoEngine inner;
    private final Map<Path, Counters> byPath = new ConcurrentHashMap<>();

    public InstrumentedEngine(IoEngine inner) {
        this.inner = inner;
    }

    /** What was counted for one open file. */
    public static final class Counters {
        private final LongAdder reads = new LongAdder();
        private final LongAdder writes = new LongAdder();
        private final LongAdder datasyncs = new LongAdder();
        private final LongAdder fallocates = new LongAdder();
        private final LongAdder writebacks = new LongAdder();

        public long reads() {
            return reads.sum();
        }

        public long writes() {
            return writes.sum();
        }

        public long datasyncs() {
            return datasyncs.sum();
        }

        public long fallocates() {
            return fallocates.sum();
        }

        /** Write-back hints ({@link EngineFile#startWriteback}). */
        public long writebacks() {
            return writebacks.sum();
        }

        @Override
        public String toString() {
            return "reads=" + reads() + " writes=" + writes() + " datasyncs=" + datasyncs()
                    + " fallocates=" + fallocates();
        }
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
        return counted(path, inner.open(path, readOnly, direct));
    }

    @Override
    public EngineFile openDevice(Path path, boolean readOnly, boolean direct) throws IOException {
        return counted(path, inner.openDevice(path, readOnly, direct));
    }

    /** Counts the calls on a newly opened file, under its path (a later open of the path replaces them). */
    private EngineFile counted(Path path, EngineFile f) {
        Counters c = new Counters();
        byPath.put(path.toAbsolutePath().normalize(), c);
        return new CountingFile(f, c);
    }

    /** The counters of the latest open of {@code path}; fails if it was never opened through this engine. */
    public Counters counters(Path path) {
        Counters c = byPath.get(path.toAbsolutePath().normalize());
        if (c == null) {
            throw new IllegalArgumentException(path + " was not opened through this engine");
        }
        return c;
    }

    private static final class CountingFile extends ForwardingEngineFile {
        private final Counters c;

        CountingFile(EngineFile delegate, Counters c) {
            super(delegate);
            this.c = c;
        }

        @Override
        public int read(ByteBuffer dst, long pos) throws IOException {
            c.reads.increment();
            return delegate.read(dst, pos);
        }

        @Override
        public int write(ByteBuffer src, long pos) throws IOException {
            c.writes.increment();
            return delegate.write(src, pos);
        }

        @Override
        public void datasync() throws IOException {
            c.datasyncs.increment();
            delegate.datasync();
        }

        @Override
        public void startWriteback() throws IOException {
            c.writebacks.increment();
            delegate.startWriteback();
        }

        @Override
        public boolean punchHole(long offset, long length) throws IOException {
            c.fallocates.increment();
            return delegate.punchHole(offset, length);
        }

        @Override
        public boolean zeroRange(long offset, long length, boolean keepSize) throws IOException {
            c.fallocates.increment();
            return delegate.zeroRange(offset, length, keepSize);
        }

        @Override
        public boolean allocate(long offset, long length) throws IOException {
            c.fallocates.increment();
            return delegate.allocate(offset, length);
        }
    }
}
