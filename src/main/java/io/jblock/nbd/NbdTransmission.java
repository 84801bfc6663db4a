package io.jblock.nbd;

import io.jblock.block.BlockException;
import io.jblock.block.BlockStatus;
import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The transmission phase of one connection, served by a small pool of
 * workers in the leader/follower pattern (as nbdkit's threads do): one
 * worker at a time holds the read side, takes one request and its WRITE
 * payload from the {@link NbdRequestReader}, hands the read side on, and
 * then serves that request itself and writes its reply. So a request costs no hand-off to another
 * thread, and replies go out in whatever order the requests finish. The
 * pool grows on demand, one worker whenever the reader finds nobody waiting
 * to read next, up to {@link Nbd#MAX_IN_FLIGHT}: that is also the bound on
 * requests in flight. Every payload buffer is charged to the connection's
 * {@link MemoryBudget} before it is taken.
 *
 * <p>Workers are threads of the same kind as the one that calls {@link #run}:
 * {@link NbdServer} serves each connection on a platform thread, because a
 * socket touched by a virtual thread is switched to non-blocking mode for
 * good and each read then costs a trip through the JDK's poller (measured:
 * about five futex calls per request, against one or two now).
 */
final class NbdTransmission {
    private static final System.Logger LOG = System.getLogger(NbdTransmission.class.getName());
    /** Descriptors per BLOCK_STATUS reply, so a fragmented image cannot make one reply huge. */
    static final int MAX_EXTENTS = 2048;
    /**
     * Reads shorter than this go out as one data chunk without asking for block status first: a hole
     * chunk would save at most this much on the wire, while the probe (lseek SEEK_DATA on a file) costs
     * as much as the read itself; on a 4 KiB random read of an unwritten file it was ~15% of the rate.
     * Longer reads (nbdcopy, qemu-img convert) still get their zero runs as holes, as from qemu-nbd.
     */
    static final int SPARSE_MIN = 64 << 10;

    private final NbdTransport t;
    private final NbdSession session;
    private final Drive drive;
    private final MemoryBudget budget;
    private final NbdReplies replies;
    private final PayloadBuffers buffers;
    /** The export size, once asked for (see {@link #exportSize}); -1 before. */
    private volatile long size = -1;
    /** {@link #exportSize} for the request checks, made once rather than per request. */
    private final NbdRequest.ExportSize exportSize = this::exportSize;

    /** The read side of the socket: whoever holds it reads the next request. */
    private final ReentrantLock reading = new ReentrantLock();
    /** Guarded by {@link #reading}: decodes requests from the socket. */
    private final NbdRequestReader requests;
    /** Guarded by {@link #reading}: no more requests will be read (DISC, end of stream or an error). */
    private boolean ended;
    /** Guarded by {@link #reading}: why reading stopped, when it was not DISC or a clean end of stream. */
    private IOException failure;
    /** Workers waiting for {@link #reading}. */
    private final AtomicInteger waiting = new AtomicInteger();
    /** Every worker started besides the connection's own thread; guarded by itself. */
    private final List<Thread> workers = new ArrayList<>();

    NbdTransmission(NbdTransport transport, NbdSession session, MemoryBudget budget, PayloadBuffers buffers) {
        this.t = transport;
        this.session = session;
        this.drive = session.export().drive();
        this.budget = budget;
        this.replies = new NbdReplies(transport);
        this.buffers = buffers;
        this.requests = new NbdRequestReader(transport);
    }

    /** Serves requests until NBD_CMD_DISC, the client closing, or a protocol error; then drains and closes. */
    void run() throws IOException {
        try {
            work();
            // NBD_CMD_DISC and disconnects alike: every request already read finishes before the close.
            // No worker starts once reading has ended, so this list is complete.
            List<Thread> all;
            synchronized (workers) {
                all = List.copyOf(workers);
            }
            for (Thread w : all) {
                w.join();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } finally {
            t.close();
        }
        IOException f;
        reading.lock();
        try {
            f = failure;
        } finally {
            reading.unlock();
        }
        if (f != null) {
            throw f;
        }
    }

    /**
     * One worker: take the read side, read a request, let go of it, serve the request; until reading ends.
     * The loop body is a method of its own so that the JIT compiles it after a few hundred requests: a
     * loop that never returns is compiled only by on-stack replacement, after tens of thousands of
     * iterations, and at 1 MiB requests a worker's loop stayed in the interpreter for the whole run.
     */
    private void work() {
        while (serveNext()) {
            // serveNext does the work
        }
    }

    /** Reads and serves one request; false, with nothing done, once reading has ended. */
    private boolean serveNext() {
        NbdRequest r;
        ByteBuffer payload = null;
        long charged = 0;
        NbdRequest.Refusal refusal = null;
        waiting.incrementAndGet();
        reading.lock();
        try {
            waiting.decrementAndGet();
            if (ended) {
                return false;
            }
            r = readRequest();
            if (r == null) {
                ended = true;
                return false;
            }
            if (r.hasPayload()) {
                if (r.oversizePayload()) {
                    // Keep the stream in sync by draining the payload, then refuse the request.
                    requests.skipPayload(r.length());
                    refusal = r.oversizeRefusal();
                } else {
                    charged = r.length();
                    budget.acquire(charged);
                    payload = buffers.acquire((int) r.length());
                    try {
                        requests.readPayload(payload);
                    } catch (IOException e) {
                        buffers.release(payload);
                        budget.release(charged);
                        throw e;
                    }
                    payload.flip();
                }
            }
            if (waiting.get() == 0) {
                grow();
            }
        } catch (IOException e) {
            ended = true;
            failure = e;
            return false;
        } finally {
            reading.unlock();
        }
        try {
            if (refusal != null) {
                safeReply(r, refusal.error(), refusal.message());
            } else {
                handle(r, payload);
            }
        } finally {
            buffers.release(payload);
            budget.release(charged);
        }
        return true;
    }

    /** The next request, or null at the end of the stream, on NBD_CMD_DISC or a bad magic. */
    private NbdRequest readRequest() throws IOException {
        NbdRequest r;
        try {
            r = requests.next();
        } catch (EOFException e) {
            return null;
        }
        return r == null || r.isDisconnect() ? null : r;
    }

    /** Called by the reader, holding {@link #reading}, when nobody waits to read next: one more worker. */
    private void grow() {
        synchronized (workers) {
            if (workers.size() + 1 >= Nbd.MAX_IN_FLIGHT) {
                return;
            }
            Thread.Builder b = Thread.currentThread().isVirtual() ? Thread.ofVirtual()
                    : Thread.ofPlatform().daemon(true);
            workers.add(b.name("nbd-worker").start(this::work));
        }
    }

    private void handle(NbdRequest r, ByteBuffer payload) {
        try {
            NbdRequest.Refusal refusal = r.refusal(session.structured(), !session.contexts().isEmpty(),
                    drive.isReadOnly(), exportSize);
            if (refusal != null) {
                reply(r, refusal.error(), refusal.message());
                return;
            }
            boolean fua = (r.flags() & Nbd.CMD_FLAG_FUA) != 0;
            switch (r.type()) {
                case Nbd.CMD_READ -> read(r);
                case Nbd.CMD_WRITE -> {
                    drive.write(r.offset(), payload, fua ? WriteFlags.FUA : 0);
                    reply(r, 0, null);
                }
                case Nbd.CMD_FLUSH -> {
                    drive.flush();
                    reply(r, 0, null);
                }
                case Nbd.CMD_TRIM -> {
                    drive.discard(r.offset(), r.length());
                    if (fua) {
                        drive.flush();
                    }
                    reply(r, 0, null);
                }
                case Nbd.CMD_WRITE_ZEROES -> {
                    int f = (fua ? WriteFlags.FUA : 0)
                            | ((r.flags() & Nbd.CMD_FLAG_NO_HOLE) == 0 ? WriteFlags.MAY_UNMAP : 0)
                            | ((r.flags() & Nbd.CMD_FLAG_FAST_ZERO) != 0 ? WriteFlags.NO_FALLBACK : 0);
                    drive.writeZeroes(r.offset(), r.length(), f);
                    reply(r, 0, null);
                }
                case Nbd.CMD_CACHE -> reply(r, 0, null); // advisory: the host page cache already does this
                case Nbd.CMD_BLOCK_STATUS -> blockStatus(r);
                default -> reply(r, Nbd.EINVAL, "unknown command " + r.type());
            }
        } catch (BlockException e) {
            LOG.log(System.Logger.Level.DEBUG, "request failed: {0}", e.getMessage());
            safeReply(r, Nbd.errorFor(e.errno()), e.getMessage());
        } catch (IOException e) {
            // The reply could not be sent: the connection is gone; stop reading too.
            t.close();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "internal error serving a request", e);
            safeReply(r, Nbd.EIO, "internal error");
        }
    }

    /**
     * The export's size as the handshake announced it, asked of the drive once per connection: the
     * drive's length is an fstat on a file, and qemu-nbd too checks requests against the size the
     * export was created with.
     */
    private long exportSize() throws BlockException {
        long s = size;
        if (s < 0) {
            s = drive.length();
            size = s;
        }
        return s;
    }

    private void read(NbdRequest r) throws IOException {
        long charged = r.length();
        budget.acquire(charged);
        ByteBuffer data = buffers.acquire((int) r.length());
        try {
            if (!session.structured()) {
                drive.read(r.offset(), data);
                replies.simple(r.cookie(), 0, data.flip());
            } else if ((r.flags() & Nbd.CMD_FLAG_DF) != 0 || r.length() < SPARSE_MIN) {
                drive.read(r.offset(), data);
                replies.offsetData(r.cookie(), true, r.offset(), data.flip());
            } else {
                sparseRead(r, data);
            }
        } finally {
            buffers.release(data);
            budget.release(charged);
        }
    }

    /** A structured read that sends zero runs as holes: what qemu-nbd does, and what saves nbdcopy work. */
    private void sparseRead(NbdRequest r, ByteBuffer data) throws IOException {
        record Piece(long offset, int length, boolean hole) {
        }
        List<Piece> pieces = new ArrayList<>();
        long pos = r.offset();
        long end = r.offset() + r.length();
        while (pos < end) {
            BlockStatus s = drive.blockStatus(pos, end - pos);
            boolean hole = s.isZero();
            int n = (int) s.length();
            Piece last = pieces.isEmpty() ? null : pieces.getLast();
            if (last != null && last.hole() == hole) {
                pieces.set(pieces.size() - 1, new Piece(last.offset(), last.length() + n, hole));
            } else {
                pieces.add(new Piece(pos, n, hole));
            }
            pos += n;
        }
        // Read every data piece before sending anything, so an error is one error chunk and no partial data.
        for (Piece p : pieces) {
            if (!p.hole()) {
                drive.read(p.offset(), data.slice((int) (p.offset() - r.offset()), p.length()));
            }
        }
        for (int i = 0; i < pieces.size(); i++) {
            Piece p = pieces.get(i);
            boolean done = i == pieces.size() - 1;
            if (p.hole()) {
                replies.offsetHole(r.cookie(), done, p.offset(), p.length());
            } else {
                replies.offsetData(r.cookie(), done, p.offset(),
                        data.slice((int) (p.offset() - r.offset()), p.length()));
            }
        }
    }

    private void blockStatus(NbdRequest r) throws IOException {
        boolean one = (r.flags() & Nbd.CMD_FLAG_REQ_ONE) != 0;
        List<NbdSession.MetaContext> contexts = session.contexts();
        if (r.length() == 0) {
            reply(r, Nbd.EINVAL, "block status of zero length");
            return;
        }
        for (int c = 0; c < contexts.size(); c++) {
            NbdSession.MetaContext ctx = contexts.get(c);
            boolean depth = ctx.name().equals(Nbd.CONTEXT_ALLOCATION_DEPTH);
            int[] lengths = new int[one ? 1 : MAX_EXTENTS];
            int[] flags = new int[lengths.length];
            int count = 0;
            long pos = r.offset();
            long end = r.offset() + r.length();
            while (pos < end) {
                BlockStatus s = drive.blockStatus(pos, end - pos);
                int f = depth ? s.depth()
                        : (s.isData() ? 0 : Nbd.STATE_HOLE) | (s.isZero() ? Nbd.STATE_ZERO : 0);
                if (count > 0 && flags[count - 1] == f) {
                    lengths[count - 1] += (int) s.length();
                } else {
                    if (count == lengths.length) {
                        break;
                    }
                    lengths[count] = (int) s.length();
                    flags[count] = f;
                    count++;
                }
                pos += s.length();
            }
            replies.blockStatus(r.cookie(), c == contexts.size() - 1, ctx.id(), lengths, flags, count);
        }
    }

    /** A success (error 0) or error reply in the form the session and command call for. */
    private void reply(NbdRequest r, int error, String message) throws IOException {
        boolean chunked = session.structured()
                && (r.type() == Nbd.CMD_READ || r.type() == Nbd.CMD_BLOCK_STATUS);
        if (error == 0) {
            if (chunked) {
                replies.none(r.cookie());
            } else {
                replies.simple(r.cookie(), 0, null);
            }
        } else if (chunked) {
            replies.error(r.cookie(), error, message == null ? "" : message);
        } else {
            replies.simple(r.cookie(), error, null);
        }
    }

    private void safeReply(NbdRequest r, int error, String message) {
        try {
            reply(r, error, message);
        } catch (IOException e) {
            t.close();
        }
    }
}
