package io.jblock.testing;

import io.jblock.block.AioMode;
import io.jblock.engine.EngineFile;
import io.jblock.engine.IoEngine;
import io.jblock.engine.ThreadsEngine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Test engine: the threads engine, counting what reaches the file, and able
 * to make datasync fail on demand (for the fsyncgate rule).
 */
public final class CountingEngine implements IoEngine {
    public final AtomicLong writes = new AtomicLong();
    public final AtomicLong datasyncs = new AtomicLong();
    /** Datasync calls still to fail with EIO. */
    public final AtomicInteger failDatasyncs = new AtomicInteger();

    public static io.jblock.options.GraphOpener.EngineProvider provider(CountingEngine e) {
        return mode -> {
            if (mode != AioMode.THREADS) {
                throw new IllegalStateException("tests use aio=threads");
            }
            return e;
        };
    }

    @Override
    public String name() {
        return "threads";
    }

    @Override
    public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
        EngineFile f = ThreadsEngine.INSTANCE.open(path, readOnly, direct);
        return new EngineFile() {
            @Override
            public int read(ByteBuffer dst, long pos) throws IOException {
                return f.read(dst, pos);
            }

            @Override
            public int write(ByteBuffer src, long pos) throws IOException {
                writes.incrementAndGet();
                return f.write(src, pos);
            }

            @Override
            public void datasync() throws IOException {
                datasyncs.incrementAndGet();
                if (failDatasyncs.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                    throw new IOException("Input/output error (injected)");
                }
                f.datasync();
            }

            @Override
            public long size() throws IOException {
                return f.size();
            }

            @Override
            public void truncate(long size) throws IOException {
                f.truncate(size);
            }

            @Override
            public boolean punchHole(long offset, long length) throws IOException {
                return f.punchHole(offset, length);
            }

            @Override
            public boolean zeroRange(long offset, long length) throws IOException {
                return f.zeroRange(offset, length);
            }

            @Override
            public boolean allocate(long offset, long length) throws IOException {
                return f.allocate(offset, length);
            }

            @Override
            public long seekData(long pos) throws IOException {
                return f.seekData(pos);
            }

            @Override
            public long seekHole(long pos) throws IOException {
                return f.seekHole(pos);
            }

            @Override
            public long allocatedSize() throws IOException {
                return f.allocatedSize();
            }

            @Override
            public int alignment() {
                return f.alignment();
            }

            @Override
            public void close() throws IOException {
                f.close();
            }
        };
    }
}
