package io.jblock.nbd;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;

/** Taking and giving back an NBD payload buffer, by one thread and by four at once. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class PayloadBuffersBench {
    @Param({"4096", "65536", "1048576"})
    public int length;

    private final PayloadBuffers buffers = new PayloadBuffers();

    @Benchmark
    public int acquireRelease() {
        ByteBuffer b = buffers.acquire(length);
        int c = b.capacity();
        buffers.release(b);
        return c;
    }

    @Benchmark
    @Threads(4)
    public int acquireRelease4Threads() {
        ByteBuffer b = buffers.acquire(length);
        int c = b.capacity();
        buffers.release(b);
        return c;
    }
}
