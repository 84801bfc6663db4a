package io.jblock.nbd;

import io.jblock.block.BlockException;
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

/**
 * Decoding NBD requests: one header from a direct buffer, the header plus the spec's checks, and a 4 KiB
 * WRITE (header and payload) taken through the receive buffer from a transport that replays the same
 * pipelined stream (no socket: only the decoding and the copy are measured).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class NbdRequestBench {
    /** Replays a stream of 16 pipelined 4 KiB writes forever, as much as the reader asks for per call. */
    static final class Replay implements NbdTransport {
        private final ByteBuffer stream;

        Replay(ByteBuffer stream) {
            this.stream = stream;
        }

        @Override
        public void readFully(ByteBuffer dst) {
            while (dst.hasRemaining()) {
                readAtLeast(dst, 1);
            }
        }

        @Override
        public int readAtLeast(ByteBuffer dst, int min) {
            int n = 0;
            while (n < min || (dst.hasRemaining() && stream.hasRemaining())) {
                if (!stream.hasRemaining()) {
                    stream.clear();
                }
                int k = Math.min(dst.remaining(), stream.remaining());
                dst.put(dst.position(), stream, stream.position(), k);
                dst.position(dst.position() + k);
                stream.position(stream.position() + k);
                n += k;
                if (!dst.hasRemaining()) {
                    break;
                }
            }
            return n;
        }

        @Override
        public void writeFully(ByteBuffer src) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void close() {
        }
    }

    private final ByteBuffer header = ByteBuffer.allocateDirect(NbdRequest.SIZE);
    private final NbdRequest.ExportSize size = () -> 1L << 30;
    private NbdRequestReader reader;
    private ByteBuffer payload;

    @Setup
    public void setUp() {
        new NbdRequest(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, 42, 123L << 12, 4096).encode(header).flip();
        ByteBuffer stream = ByteBuffer.allocateDirect(16 * (NbdRequest.SIZE + 4096));
        for (int i = 0; i < 16; i++) {
            new NbdRequest(0, Nbd.CMD_WRITE, i, (long) i << 12, 4096).encode(stream);
            stream.position(stream.position() + 4096);
        }
        reader = new NbdRequestReader(new Replay(stream.flip()));
        payload = ByteBuffer.allocateDirect(4096);
    }

    @Benchmark
    public NbdRequest decodeHeader() {
        return NbdRequest.decode(header, 0);
    }

    @Benchmark
    public NbdRequest.Refusal decodeAndCheck() throws BlockException {
        return NbdRequest.decode(header, 0).refusal(true, false, false, size);
    }

    @Benchmark
    public long readWrite4kThroughTheReceiveBuffer() throws IOException {
        NbdRequest r = reader.next();
        reader.readPayload(payload.clear());
        return r.cookie();
    }
}
