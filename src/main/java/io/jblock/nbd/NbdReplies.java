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

    NbdReplies(NbdTransport transport) {
        this.transport = transport;
    }

    /** A simple reply; {@code data} follows it only for a successful READ. */
    void simple(long cookie, int error, ByteBuffer data) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(16);
        h.putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie).flip();
        send(h, data);
    }

    /** The header of a structured chunk with a payload of {@code length} bytes. */
    private static ByteBuffer chunkHeader(long cookie, int flags, int type, int length, int extra) {
        ByteBuffer h = ByteBuffer.allocate(20 + extra);
        h.putInt(Nbd.STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie)
                .putInt(length);
        return h;
    }

    void none(long cookie) throws IOException {
        send(chunkHeader(cookie, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_NONE, 0, 0).flip(), null);
    }

    void offsetData(long cookie, boolean done, long offset, ByteBuffer data) throws IOException {
        ByteBuffer h = chunkHeader(cookie, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_OFFSET_DATA,
                8 + data.remaining(), 8);
        h.putLong(offset).flip();
        send(h, data);
    }

    void offsetHole(long cookie, boolean done, long offset, int length) throws IOException {
        ByteBuffer h = chunkHeader(cookie, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_OFFSET_HOLE, 12, 12);
        h.putLong(offset).putInt(length).flip();
        send(h, null);
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

    private void send(ByteBuffer header, ByteBuffer data) throws IOException {
        lock.lock();
        try {
            transport.writeFully(header, data);
        } finally {
            lock.unlock();
        }
    }
}
