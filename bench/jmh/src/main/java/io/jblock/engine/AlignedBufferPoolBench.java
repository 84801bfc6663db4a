package io.jblock.engine;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;

/** The O_DIRECT bounce buffer pool: take and give back one 1 MiB aligned buffer. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class AlignedBufferPoolBench {
    private final AlignedBufferPool pool = new AlignedBufferPool(1 << 20, 4096, 4);

    @Benchmark
    public int takeGive() {
        ByteBuffer b = pool.take();
        int c = b.capacity();
        pool.give(b);
        return c;
    }

    @Benchmark
    @Threads(4)
    public int takeGive4Threads() {
        ByteBuffer b = pool.take();
        int c = b.capacity();
        pool.give(b);
        return c;
    }
}
