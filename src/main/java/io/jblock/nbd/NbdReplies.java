package io.jblock.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes transmission-phase replies. Replies to different requests may be
 * produced concurrently by different workers; a lock keeps each
 * reply (or structured chunk) whole on the wire.
 */
final class NbdReplies {
    private final NbdTransport transport;
    private final ReentrantLock lock = new ReentrantLock();
    /**
     * Guarded by {@link #lock}: the header of the reply being sent, for the fixed-size headers (simple
     * replies and the NONE, OFFSET_DATA and OFFSET_HOLE chunks), so the hot path allocates nothing and the
     * socket writes it without the JDK's copy of a heap buffer into a temporary direct one.
     */
    private final ByteBuffer header = ByteBuffer.allocateDirect(32);

    NbdReplies(NbdTransport transport) {
        this.transport = transport;
    }

    /** A simple reply; {@code data} follows it only for a successful READ. */
    void simple(long cookie, int error, ByteBuffer data) throws IOException {
        lock.lock();
        try {
            header.clear().putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie).flip();
            transport.writeFully(header, data);
        } finally {
            lock.unlock();
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

    void none(long cookie) throws IOException {
        lock.lock();
        try {
            chunkHeader(header.clear(), cookie, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_NONE, 0).flip();
            transport.writeFully(header, null);
        } finally {
            lock.unlock();
        }
    }

    void offsetData(long cookie, boolean done, long offset, ByteBuffer data) throws IOException {
        lock.lock();
        try {
            chunkHeader(header.clear(), cookie, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_OFFSET_DATA,
                    8 + data.remaining()).putLong(offset).flip();
            transport.writeFully(header, data);
        } finally {
            lock.unlock();
        }
    }

    void offsetHole(long cookie, boolean done, long offset, int length) throws IOException {
        lock.lock();
        try {
            chunkHeader(header.clear(), cookie, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_OFFSET_HOLE, 12)
                    .putLong(offset).putInt(length).flip();
            transport.writeFully(header, null);
        } finally {
            lock.unlock();
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
        send(h.flip(), null);
    }

    /** A structured error chunk, always the last of its reply. */
    void error(long cookie, int error, String message) throws IOException {
        byte[] msg = message.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(msg.length, Nbd.MAX_STRING);
        ByteBuffer h = chunkHeader(cookie, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_ERROR, 6 + n, 6 + n);
        h.putInt(error).putShort((short) n).put(msg, 0, n).flip();
        send(h, null);
    }

    private void send(ByteBuffer h, ByteBuffer data) throws IOException {
        lock.lock();
        try {
            transport.writeFully(h, data);
        } finally {
            lock.unlock();
        }
    }
}
