package io.jblock.testing;

import io.jblock.block.AioMode;
import io.jblock.engine.EngineFile;
import io.jblock.engine.InstrumentedEngine;
import io.jblock.engine.IoEngine;
import io.jblock.options.GraphOpener;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Test engine for tests with one image file: the threads engine with the
 * faults a test injects ({@link FaultyEngine}), counted at the engine
 * ({@link InstrumentedEngine}), so a test can say what reached the file.
 */
public final class CountingEngine implements IoEngine {
    /** The faults to inject (failing datasyncs, refused space operations). */
    public final FaultyEngine faults = new FaultyEngine();
    private final InstrumentedEngine counted = new InstrumentedEngine(faults);
    private volatile Path image;

    public static GraphOpener.EngineProvider provider(CountingEngine e) {
        return mode -> {
            if (mode != AioMode.THREADS) {
                throw new IllegalStateException("tests use aio=threads");
            }
            return e;
        };
    }

    /** fdatasync calls that reached the image file. */
    public long datasyncs() {
        return counted.counters(image).datasyncs();
    }

    /** Write-back hints that reached the image file. */
    public long writebacks() {
        return counted.counters(image).writebacks();
    }

    /** Read calls that reached the image file. */
    public long reads() {
        return counted.counters(image).reads();
    }

    /** Write calls that reached the image file. */
    public long writes() {
        return counted.counters(image).writes();
    }

    @Override
    public String name() {
        return counted.name();
    }

    @Override
    public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
        image = path;
        return counted.open(path, readOnly, direct);
    }
}
