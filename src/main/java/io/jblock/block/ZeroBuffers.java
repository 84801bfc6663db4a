package io.jblock.block;

import java.nio.ByteBuffer;

/** Writing zeroes the slow way, for nodes that cannot zero a range cheaply. */
final class ZeroBuffers {
    /** One shared read-only block of zeroes; slices of it are written repeatedly. */
    private static final int CHUNK = 1 << 20;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(CHUNK).asReadOnlyBuffer();

    interface Writer {
        void write(long offset, ByteBuffer src, int flags) throws BlockException;
    }

    private ZeroBuffers() {
    }

    static void write(Writer w, long offset, long length, int flags) throws BlockException {
        while (length > 0) {
            int n = (int) Math.min(length, CHUNK);
            w.write(offset, ZEROES.duplicate().limit(n), flags);
            offset += n;
            length -= n;
        }
    }

    /** Whether every remaining byte of {@code buf} is zero (for detect-zeroes), without moving it. */
    static boolean isZero(ByteBuffer buf) {
        int p = buf.position();
        int end = buf.limit();
        while (p + 8 <= end) {
            if (buf.getLong(p) != 0) {
                return false;
            }
            p += 8;
        }
        while (p < end) {
            if (buf.get(p) != 0) {
                return false;
            }
            p++;
        }
        return true;
    }
}
