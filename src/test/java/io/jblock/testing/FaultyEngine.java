package io.jblock.testing;

import io.jblock.engine.EngineFile;
import io.jblock.engine.ForwardingEngineFile;
import io.jblock.engine.IoEngine;
import io.jblock.engine.ThreadsEngine;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The threads engine with faults chosen by a test: datasyncs that fail, and
 * file systems that refuse punching, zeroing, allocating or seeking holes.
 */
public final class FaultyEngine implements IoEngine {
    /** How many of the next datasyncs fail with EIO. */
    public final AtomicInteger failingDatasyncs = new AtomicInteger();
    public volatile boolean canPunch = true;
    public volatile boolean canZeroRange = true;
    public volatile boolean canAllocate = true;
    public volatile boolean canSeekHoles = true;

    @Override
    public String name() {
        return "threads";
    }

    @Override
    public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
        return new ForwardingEngineFile(ThreadsEngine.INSTANCE.open(path, readOnly, direct)) {
            @Override
            public void datasync() throws IOException {
                if (failingDatasyncs.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                    throw new IOException("Input/output error");
                }
                super.datasync();
            }

            @Override
            public boolean punchHole(long offset, long length) throws IOException {
                return canPunch && super.punchHole(offset, length);
            }

            @Override
            public boolean zeroRange(long offset, long length, boolean keepSize) throws IOException {
                return canZeroRange && super.zeroRange(offset, length, keepSize);
            }

            @Override
            public boolean allocate(long offset, long length) throws IOException {
                return canAllocate && super.allocate(offset, length);
            }

            @Override
            public long seekData(long pos) throws IOException {
                if (!canSeekHoles) {
                    throw new UnsupportedOperationException("SEEK_DATA");
                }
                return super.seekData(pos);
            }

            @Override
            public long seekHole(long pos) throws IOException {
                if (!canSeekHoles) {
                    throw new UnsupportedOperationException("SEEK_HOLE");
                }
                return super.seekHole(pos);
            }
        };
    }
}
