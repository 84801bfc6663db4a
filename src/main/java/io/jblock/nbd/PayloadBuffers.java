package io.jblock.nbd;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Direct, 4 KiB-aligned buffers for request and reply payloads, reused
 * between requests. Direct memory lets the socket and the file be read and
 * written without the JDK's hidden copy through a temporary direct buffer,
 * and the alignment lets O_DIRECT use them without a bounce. Buffers come in
 * power-of-two classes from 4 KiB to {@link Nbd#MAX_PAYLOAD}; at most
 * {@link #RETAINED_BYTES} are kept idle, the rest are left to the GC.
 * (What may be in use at once is bounded by each connection's MemoryBudget.)
 */
final class PayloadBuffers {
    static final int ALIGNMENT = 4096;
    static final long RETAINED_BYTES = 64L << 20;
    private static final int MIN_SHIFT = 12;
    private static final int MAX_SHIFT = Integer.numberOfTrailingZeros(Nbd.MAX_PAYLOAD);

    @SuppressWarnings("unchecked")
    private final ConcurrentLinkedDeque<ByteBuffer>[] free = new ConcurrentLinkedDeque[MAX_SHIFT - MIN_SHIFT + 1];
    private final AtomicLong retained = new AtomicLong();

    PayloadBuffers() {
        for (int i = 0; i < free.length; i++) {
            free[i] = new ConcurrentLinkedDeque<>();
        }
    }

    /** A buffer with position 0 and limit {@code length} (at most {@link Nbd#MAX_PAYLOAD}). */
    ByteBuffer acquire(int length) {
        int shift = classOf(length);
        ByteBuffer b = free[shift - MIN_SHIFT].pollFirst();
        if (b != null) {
            retained.addAndGet(-b.capacity());
        } else {
            int size = 1 << shift;
            b = ByteBuffer.allocateDirect(size + ALIGNMENT).alignedSlice(ALIGNMENT).limit(size).slice();
        }
        return b.clear().limit(length);
    }

    /** Gives a buffer from {@link #acquire} back; it must not be used afterwards. */
    void release(ByteBuffer b) {
        if (b == null || !b.isDirect() || Integer.bitCount(b.capacity()) != 1) {
            return;
        }
        if (retained.addAndGet(b.capacity()) > RETAINED_BYTES) {
            retained.addAndGet(-b.capacity());
            return;
        }
        free[Integer.numberOfTrailingZeros(b.capacity()) - MIN_SHIFT].offerFirst(b);
    }

    private static int classOf(int length) {
        if (length < 0 || length > Nbd.MAX_PAYLOAD) {
            throw new IllegalArgumentException("payload length " + length + " outside 0.." + Nbd.MAX_PAYLOAD);
        }
        int shift = 32 - Integer.numberOfLeadingZeros(Math.max(1, length) - 1);
        return Math.max(MIN_SHIFT, shift);
    }
}
