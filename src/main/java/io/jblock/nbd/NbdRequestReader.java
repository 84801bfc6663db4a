package io.jblock.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads requests off one connection through a receive buffer, so that one
 * system call takes in whatever the client has pipelined: at iodepth 16 a
 * read brings several request headers and small WRITE payloads at once,
 * where reading each header and each payload straight from the socket cost
 * two reads per request. Payloads are copied out of the buffer into their
 * own payload buffer (a 4 KiB copy costs far less than a read call); the
 * part of a large payload that is not buffered yet is read straight into its
 * payload buffer. Used by one thread at a time (whoever holds the
 * connection's read side).
 *
 * <p>After a payload that was read straight into its buffer (a large WRITE),
 * the next header is read alone: a stream of 1 MiB writes would otherwise
 * bring the first 128 KiB of every payload into the receive buffer, to be
 * copied out again; one more read call of 28 bytes costs less than that copy.
 * Any other request puts the reader back to reading as much as is there.
 *
 * <p>Buffer indices: bytes between {@code in.position()} and
 * {@code in.limit()} are received and not yet consumed.
 */
final class NbdRequestReader {
    private static final System.Logger LOG = System.getLogger(NbdRequestReader.class.getName());
    /**
     * Receive buffer size: room for 16 pipelined 4 KiB writes (what fio and qemu send at depth 16). A
     * payload remainder larger than half of this is read straight into its own buffer instead.
     */
    static final int BUFFER_SIZE = 128 << 10;

    private final NbdTransport t;
    private final ByteBuffer in;
    /** The last payload was read straight from the socket: read the next header alone. */
    private boolean headerAlone;
    /** Payload bytes copied out of the receive buffer (tests). */
    private long copied;

    NbdRequestReader(NbdTransport t) {
        this(t, BUFFER_SIZE);
    }

    NbdRequestReader(NbdTransport t, int bufferSize) {
        if (bufferSize < NbdRequest.SIZE) {
            throw new IllegalArgumentException("receive buffer " + bufferSize + " below one request header");
        }
        this.t = t;
        this.in = ByteBuffer.allocateDirect(bufferSize).limit(0);
    }

    /**
     * The next request header; EOFException when the client closes, even in the middle of a header. The
     * result is null for a bad magic (the connection must end: nothing after it can be trusted). A WRITE's
     * payload must then be taken with {@link #readPayload} or {@link #skipPayload} before the next call.
     */
    NbdRequest next() throws IOException {
        if (headerAlone && !in.hasRemaining()) {
            readHeaderAlone();
        } else {
            fill(NbdRequest.SIZE);
        }
        headerAlone = false;
        NbdRequest r = NbdRequest.decode(in, in.position());
        if (r == null) {
            LOG.log(System.Logger.Level.DEBUG, "bad request magic 0x{0}; disconnecting",
                    Integer.toHexString(in.getInt(in.position())));
        }
        in.position(in.position() + NbdRequest.SIZE);
        return r;
    }

    /** The bytes received and not yet consumed (tests, and to see whether another request is waiting). */
    int buffered() {
        return in.remaining();
    }

    /** Fills {@code dst} (its position to its limit) with the payload that follows the last header. */
    void readPayload(ByteBuffer dst) throws IOException {
        take(dst);
        if (!dst.hasRemaining()) {
            return;
        }
        if (dst.remaining() > in.capacity() / 2) {
            t.readFully(dst);
            headerAlone = true;
        } else {
            // A short remainder: read it through the buffer, so the same call may bring the next requests.
            fill(dst.remaining());
            take(dst);
        }
    }

    /** Reads and drops {@code length} bytes of payload: how a refused WRITE is skipped to stay in sync. */
    void skipPayload(long length) throws IOException {
        int n = (int) Math.min(length, in.remaining());
        in.position(in.position() + n);
        length -= n;
        if (length > 0) {
            t.skip(length);
        }
    }

    /** Payload bytes copied out of the receive buffer so far (the rest went straight to their buffers). */
    long copied() {
        return copied;
    }

    /** Moves as much of the buffered input as fits into {@code dst}. */
    private void take(ByteBuffer dst) {
        int n = Math.min(in.remaining(), dst.remaining());
        dst.put(dst.position(), in, in.position(), n);
        dst.position(dst.position() + n);
        in.position(in.position() + n);
        copied += n;
    }

    /** With nothing buffered: reads exactly one header, nothing of what follows it. */
    private void readHeaderAlone() throws IOException {
        in.clear().limit(NbdRequest.SIZE);
        try {
            t.readFully(in);
        } finally {
            in.flip();
        }
    }

    /** Makes at least {@code n} (at most the capacity) bytes buffered, reading as much as is there. */
    private void fill(int n) throws IOException {
        int have = in.remaining();
        if (have >= n) {
            return;
        }
        in.compact();
        try {
            t.readAtLeast(in, n - have);
        } finally {
            in.flip();
        }
    }
}
