package io.jblock.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes transmission-phase replies. Replies to different requests may be
 * produced concurrently by different workers; a lock keeps each reply (or
 * structured chunk) whole on the wire.
 *
 * <p>Replies that are one small header and nothing else (the answer to a
 * WRITE, FLUSH, TRIM, WRITE_ZEROES or CACHE, simple or structured NONE) are
 * combined: a worker appends its header to {@link #pending} and sends
 * everything pending only if the lock is free; if another worker holds the
 * lock, that worker sends it before it lets go. So a worker never waits
 * behind another's write to acknowledge a write, and replies that finish
 * together leave in one system call. Nothing is left behind: a worker
 * appends and then tries the lock, and the holder lets go of the lock and
 * then looks at {@link #pending} again; whichever comes second sends it.
 * Pending replies are bounded ({@link #PENDING_BYTES}); a worker that finds
 * no room waits for the lock as data replies do, so a client that stops
 * reading its replies stops the server's workers too.
 */
final class NbdReplies {
    /** Room for 64 pending header-only replies (four times the requests one connection has in flight). */
    static final int PENDING_BYTES = 64 * 20;

    private final NbdTransport transport;
    private final ReentrantLock lock = new ReentrantLock();
    /**
     * Guarded by {@link #lock}: what is sent next, the pending replies taken from {@link #pending} and then
     * the header of the reply being sent (a fixed-size one: simple replies and the NONE, OFFSET_DATA and
     * OFFSET_HOLE chunks), so the hot path allocates nothing and the socket writes it without the JDK's
     * copy of a heap buffer into a temporary direct one.
     */
    private final ByteBuffer out = ByteBuffer.allocateDirect(PENDING_BYTES + 32);
    /** Guarded by itself: header-only replies waiting to be sent, in write mode. */
    private final ByteBuffer pending = ByteBuffer.allocateDirect(PENDING_BYTES);

    NbdReplies(NbdTransport transport) {
        this.transport = transport;
    }

    /** A simple reply; {@code data} follows it only for a successful READ. */
    void simple(long cookie, int error, ByteBuffer data) throws IOException {
        if (data == null && offer(Nbd.SIMPLE_REPLY_MAGIC, error, cookie)) {
            return;
        }
        lock.lock();
        try {
            takePending().putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie).flip();
            transport.writeFully(out, data);
        } finally {
            unlockAndSendPending();
        }
    }

    /** The header of a structured chunk with a payload of {@code length} bytes. */
    private static ByteBuffer chunkHeader(long cookie, int flags, int type, int length, int extra) {
        return chunkHeader(ByteBuffer.allocate(20 + extra), cookie, flags, type, length);
    }

    private static ByteBuffer chunkHeader(ByteBuffer h, long cookie, int flags, int type, int length) {
        h.putInt(Nbd.STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie)
                .putInt(length);
        return h;
    }

    /** A structured reply with no data: one NONE chunk flagged DONE. */
    void none(long cookie) throws IOException {
        if (offer(Nbd.STRUCTURED_REPLY_MAGIC, Nbd.REPLY_FLAG_DONE << 16 | Nbd.REPLY_TYPE_NONE, cookie)) {
            return;
        }
        lock.lock();
        try {
            chunkHeader(takePending(), cookie, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_NONE, 0).flip();
            transport.writeFully(out, null);
        } finally {
            unlockAndSendPending();
        }
    }

    void offsetData(long cookie, boolean done, long offset, ByteBuffer data) throws IOException {
        lock.lock();
        try {
            chunkHeader(takePending(), cookie, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_OFFSET_DATA,
                    8 + data.remaining()).putLong(offset).flip();
            transport.writeFully(out, data);
        } finally {
            unlockAndSendPending();
        }
    }

    void offsetHole(long cookie, boolean done, long offset, int length) throws IOException {
        lock.lock();
        try {
            chunkHeader(takePending(), cookie, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_OFFSET_HOLE, 12)
                    .putLong(offset).putInt(length).flip();
            transport.writeFully(out, null);
        } finally {
            unlockAndSendPending();
        }
    }

    /** A BLOCK_STATUS chunk: the context id, then (length, flags) pairs. */
    void blockStatus(long cookie, boolean done, int contextId, int[] lengths, int[] flags, int count)
            throws IOException {
        ByteBuffer h = chunkHeader(cookie, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_BLOCK_STATUS,
                4 + 8 * count, 4 + 8 * count);
        h.putInt(contextId);
        for (int i = 0; i < count; i++) {
            h.putInt(lengths[i]).putInt(flags[i]);
        }
        send(h.flip());
    }

    /** A structured error chunk, always the last of its reply. */
    void error(long cookie, int error, String message) throws IOException {
        byte[] msg = message.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(msg.length, Nbd.MAX_STRING);
        ByteBuffer h = chunkHeader(cookie, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_ERROR, 6 + n, 6 + n);
        h.putInt(error).putShort((short) n).put(msg, 0, n).flip();
        send(h);
    }

    private void send(ByteBuffer h) throws IOException {
        lock.lock();
        try {
            takePending().flip();
            transport.writeFully(out, h);
        } finally {
            unlockAndSendPending();
        }
    }

    /**
     * Appends a 16-byte simple reply (magic, error, cookie) or a 20-byte NONE chunk (magic, flags and type,
     * cookie, length 0) to {@link #pending} and sends what is pending if the lock is free. False, with
     * nothing appended, when {@link #pending} is full: the caller then sends its reply itself.
     */
    private boolean offer(int magic, int second, long cookie) throws IOException {
        boolean structured = magic == Nbd.STRUCTURED_REPLY_MAGIC;
        synchronized (pending) {
            if (pending.remaining() < 20) {
                return false;
            }
            pending.putInt(magic).putInt(second).putLong(cookie);
            if (structured) {
                pending.putInt(0);
            }
        }
        if (lock.tryLock()) {
            try {
                takePending().flip();
                transport.writeFully(out, null);
            } finally {
                unlockAndSendPending();
            }
        }
        return true;
    }

    /** Holding the lock: {@link #out} cleared and filled with the pending replies, in write mode. */
    private ByteBuffer takePending() {
        out.clear();
        synchronized (pending) {
            out.put(pending.flip());
            pending.clear();
        }
        return out;
    }

    /**
     * Lets go of the lock, then sends whatever was appended meanwhile by workers that found the lock taken,
     * unless another worker holds the lock by then (it will send it).
     */
    private void unlockAndSendPending() throws IOException {
        lock.unlock();
        while (hasPending() && lock.tryLock()) {
            try {
                takePending().flip();
                transport.writeFully(out, null);
            } finally {
                lock.unlock();
            }
        }
    }

    private boolean hasPending() {
        synchronized (pending) {
            return pending.position() > 0;
        }
    }
}
