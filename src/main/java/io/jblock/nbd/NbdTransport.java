package io.jblock.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;

/**
 * The byte stream of one NBD connection: a TCP or Unix socket channel, or a
 * socket inherited by file descriptor (socket activation). Reads are done by
 * one thread at a time (the connection's reader); writes are serialised by
 * the reply writer.
 */
public interface NbdTransport extends AutoCloseable {
    /** Reads exactly {@code dst.remaining()} bytes; EOFException when the peer closes first. */
    void readFully(ByteBuffer dst) throws IOException;

    /**
     * Reads at least {@code min} bytes into {@code dst} and as many more as are already there, up to
     * {@code dst.remaining()}: how the request reader takes whatever the client has pipelined in one system
     * call. EOFException when the peer closes first. The default reads exactly {@code min}.
     */
    default int readAtLeast(ByteBuffer dst, int min) throws IOException {
        int limit = dst.limit();
        dst.limit(dst.position() + min);
        try {
            readFully(dst);
        } finally {
            dst.limit(limit);
        }
        return min;
    }

    /** Writes all of {@code src}. */
    void writeFully(ByteBuffer src) throws IOException;

    /**
     * Writes all of {@code first} and then all of {@code second} (null for none): a reply header and
     * its payload, in one gathering write where the channel allows it, so a reply is one system call.
     */
    default void writeFully(ByteBuffer first, ByteBuffer second) throws IOException {
        writeFully(first);
        if (second != null) {
            writeFully(second);
        }
    }

    /** Reads and drops {@code length} bytes in bounded pieces: how a refused payload is skipped to stay in sync. */
    default void skip(long length) throws IOException {
        ByteBuffer scratch = ByteBuffer.allocate((int) Math.min(64 << 10, Math.max(1, length)));
        while (length > 0) {
            scratch.clear().limit((int) Math.min(scratch.capacity(), length));
            readFully(scratch);
            length -= scratch.limit();
        }
    }

    /** Stops both directions; safe to call more than once, from any thread. */
    @Override
    void close();

    /** A transport over a connected channel (SocketChannel for TCP and Unix sockets). */
    static NbdTransport of(ByteChannel ch) {
        return new NbdTransport() {
            @Override
            public void readFully(ByteBuffer dst) throws IOException {
                while (dst.hasRemaining()) {
                    if (ch.read(dst) < 0) {
                        throw new EOFException("client closed the connection");
                    }
                }
            }

            @Override
            public int readAtLeast(ByteBuffer dst, int min) throws IOException {
                int n = 0;
                while (n < min) {
                    int r = ch.read(dst);
                    if (r < 0) {
                        throw new EOFException("client closed the connection");
                    }
                    n += r;
                }
                return n;
            }

            @Override
            public void writeFully(ByteBuffer src) throws IOException {
                while (src.hasRemaining()) {
                    ch.write(src);
                }
            }

            @Override
            public void writeFully(ByteBuffer first, ByteBuffer second) throws IOException {
                if (second == null || !(ch instanceof GatheringByteChannel g)) {
                    NbdTransport.super.writeFully(first, second);
                    return;
                }
                ByteBuffer[] both = {first, second};
                while (second.hasRemaining()) {
                    g.write(both);
                }
            }

            @Override
            public void close() {
                try {
                    ch.close();
                } catch (IOException ignored) {
                    // Closing is best effort; the connection is over either way.
                }
            }
        };
    }
}
