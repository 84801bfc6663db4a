package io.jblock.testing;

import io.jblock.block.AioMode;
import io.jblock.engine.EngineFile;
import io.jblock.engine.ForwardingEngineFile;
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
        return new ForwardingEngineFile(ThreadsEngine.INSTANCE.open(path, readOnly, direct)) {
            @Override
            public int write(ByteBuffer src, long pos) throws IOException {
                writes.incrementAndGet();
                return super.write(src, pos);
            }

            @Override
            public void datasync() throws IOException {
                datasyncs.incrementAndGet();
                if (failDatasyncs.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                    throw new IOException("Input/output error (injected)");
                }
                super.datasync();
            }
        };
    }
}
