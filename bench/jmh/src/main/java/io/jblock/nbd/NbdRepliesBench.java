package io.jblock.nbd;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;

/** Encoding NBD replies (simple and structured) onto a transport that only counts the bytes. */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class NbdRepliesBench {
    /** A transport that drops what it is given: only the encoding is measured. */
    static final class Sink implements NbdTransport {
        long bytes;

        @Override
        public void readFully(ByteBuffer dst) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void writeFully(ByteBuffer src) {
            bytes += src.remaining();
            src.position(src.limit());
        }

        @Override
        public void close() {
        }
    }

    private Sink sink;
    private NbdReplies replies;
    private ByteBuffer data;
    private long cookie;

    @Setup
    public void setUp() {
        sink = new Sink();
        replies = new NbdReplies(sink);
        data = ByteBuffer.allocateDirect(4096);
    }

    @Benchmark
    public long simpleReplyWith4k() throws IOException {
        replies.simple(++cookie, 0, data.clear());
        return sink.bytes;
    }

    @Benchmark
    public long structuredOffsetDataDone4k() throws IOException {
        replies.offsetData(++cookie, true, 1 << 20, data.clear());
        return sink.bytes;
    }

    @Benchmark
    public long structuredNone() throws IOException {
        replies.none(++cookie);
        return sink.bytes;
    }
}
