package io.jblock.nbd;

import io.jblock.block.BlockException;

import java.nio.ByteBuffer;

/**
 * One transmission-phase request as the client sent it, decoded from its
 * 28-byte header (doc/proto.md, "Request message"), big-endian:
 *
 * <pre>
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +---------------------------------------------------------------+
 *  |                 NBD_REQUEST_MAGIC (0x25609513)                |  0
 *  +-------------------------------+-------------------------------+
 *  |         command flags         |             type              |  4
 *  +-------------------------------+-------------------------------+
 *  |                                                               |  8
 *  +                     cookie (the client's handle)              +
 *  |                                                               | 12
 *  +---------------------------------------------------------------+
 *  |                                                               | 16
 *  +                      offset (unsigned)                        +
 *  |                                                               | 20
 *  +---------------------------------------------------------------+
 *  |                      length (unsigned)                        | 24
 *  +---------------------------------------------------------------+
 *  |  NBD_CMD_WRITE only: length bytes of data ...                 | 28
 * </pre>
 *
 * The checks a request goes through are the spec's, in this order: a bad
 * magic ends the connection (the stream cannot be trusted); NBD_CMD_DISC
 * ends it cleanly; a WRITE payload above {@link Nbd#MAX_PAYLOAD} is drained
 * and refused with EINVAL ({@link #oversizePayload}); then {@link #refusal}
 * checks the type, the flags the type allows, a read-only export (EPERM), a
 * READ above the payload limit, BLOCK_STATUS without a meta context, and the
 * offset and length against the export size (ENOSPC for writes, EINVAL for
 * the rest, as qemu-nbd answers).
 *
 * @param flags  the command flags, unsigned 16 bits
 * @param type   the command type, unsigned 16 bits
 * @param cookie the client's handle, echoed in the reply
 * @param offset the offset, as sent (an offset above 2^63 is negative here)
 * @param length the length, unsigned 32 bits
 */
record NbdRequest(int flags, int type, long cookie, long offset, long length) {
    /** Bytes of a request header. */
    static final int SIZE = 28;
    static final int MAGIC_OFFSET = 0;
    static final int FLAGS_OFFSET = 4;
    static final int TYPE_OFFSET = 6;
    static final int COOKIE_OFFSET = 8;
    static final int OFFSET_OFFSET = 16;
    static final int LENGTH_OFFSET = 24;

    /**
     * The request whose header starts at absolute index {@code at} of {@code b} (big-endian, as a
     * ByteBuffer is by default), or null if its magic is wrong: the caller then disconnects.
     * The buffer's position is not moved.
     */
    static NbdRequest decode(ByteBuffer b, int at) {
        if (b.getInt(at + MAGIC_OFFSET) != Nbd.REQUEST_MAGIC) {
            return null;
        }
        return new NbdRequest(Short.toUnsignedInt(b.getShort(at + FLAGS_OFFSET)),
                Short.toUnsignedInt(b.getShort(at + TYPE_OFFSET)), b.getLong(at + COOKIE_OFFSET),
                b.getLong(at + OFFSET_OFFSET), Integer.toUnsignedLong(b.getInt(at + LENGTH_OFFSET)));
    }

    /** Writes this request's header at the buffer's position and advances it (clients and tests). */
    ByteBuffer encode(ByteBuffer b) {
        return b.putInt(Nbd.REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie)
                .putLong(offset).putInt((int) length);
    }

    /** NBD_CMD_DISC: the client is leaving; no reply. */
    boolean isDisconnect() {
        return type == Nbd.CMD_DISC;
    }

    /** Whether {@link #length} bytes of data follow this header on the wire. */
    boolean hasPayload() {
        return type == Nbd.CMD_WRITE;
    }

    /**
     * A WRITE whose payload is above {@link Nbd#MAX_PAYLOAD}: the payload must be drained to stay in
     * sync and the request refused with EINVAL, before any memory is taken for it.
     */
    boolean oversizePayload() {
        return hasPayload() && length > Nbd.MAX_PAYLOAD;
    }

    /** The refusal of an {@link #oversizePayload} write. */
    Refusal oversizeRefusal() {
        return Refusal.invalid("write of " + length + " bytes exceeds the maximum payload of " + Nbd.MAX_PAYLOAD);
    }

    /** Why a request is refused before any I/O: the NBD error and a message for a structured error chunk. */
    record Refusal(int error, String message) {
        static Refusal invalid(String message) {
            return new Refusal(Nbd.EINVAL, message);
        }
    }

    /** The export size, asked for only by the checks that need it (FLUSH does not). */
    @FunctionalInterface
    interface ExportSize {
        long get() throws BlockException;
    }

    /**
     * The refusal of a malformed or disallowed request, or null when it may run.
     *
     * @param structured  structured replies were negotiated (allows DF on READ)
     * @param hasContexts a meta context was negotiated (needed by BLOCK_STATUS)
     * @param readOnly    the export is read-only (writes get EPERM)
     */
    Refusal refusal(boolean structured, boolean hasContexts, boolean readOnly, ExportSize size)
            throws BlockException {
        int allowed = switch (type) {
            case Nbd.CMD_READ -> structured ? Nbd.CMD_FLAG_DF : 0;
            case Nbd.CMD_WRITE, Nbd.CMD_TRIM -> Nbd.CMD_FLAG_FUA;
            case Nbd.CMD_WRITE_ZEROES -> Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FAST_ZERO;
            case Nbd.CMD_BLOCK_STATUS -> Nbd.CMD_FLAG_REQ_ONE;
            case Nbd.CMD_FLUSH, Nbd.CMD_CACHE -> 0;
            default -> -1;
        };
        if (allowed < 0) {
            return Refusal.invalid("unknown command " + type);
        }
        if ((flags & ~allowed) != 0) {
            return Refusal.invalid("unsupported flags 0x" + Integer.toHexString(flags) + " for command " + type);
        }
        boolean writes = type == Nbd.CMD_WRITE || type == Nbd.CMD_TRIM || type == Nbd.CMD_WRITE_ZEROES;
        if (writes && readOnly) {
            return new Refusal(Nbd.EPERM, "export is read-only");
        }
        if (type == Nbd.CMD_READ && length > Nbd.MAX_PAYLOAD) {
            return Refusal.invalid("read of " + length + " bytes exceeds the maximum payload of " + Nbd.MAX_PAYLOAD);
        }
        if (type == Nbd.CMD_BLOCK_STATUS && (!structured || !hasContexts)) {
            return Refusal.invalid("no meta context was negotiated");
        }
        if (type == Nbd.CMD_FLUSH) {
            return null;
        }
        long s = size.get();
        if (offset < 0 || offset > s || length > s - offset) {
            // As qemu-nbd: writing past the end is "no space", anything else past the end is invalid.
            int error = type == Nbd.CMD_WRITE || type == Nbd.CMD_WRITE_ZEROES ? Nbd.ENOSPC : Nbd.EINVAL;
            return new Refusal(error, "operation past EOF: offset " + Long.toUnsignedString(offset)
                    + ", length " + length + ", export size " + s);
        }
        return null;
    }
}
