package io.jblock.nbd;

import io.jblock.engine.IdleBuffers;

import java.nio.ByteBuffer;

/**
 * Direct, 4 KiB-aligned buffers for request and reply payloads, reused
 * between requests. Direct memory lets the socket and the file be read and
 * written without the JDK's hidden copy through a temporary direct buffer,
 * and the alignment lets O_DIRECT use them without a bounce. Buffers come in
 * power-of-two classes from 4 KiB to {@link Nbd#MAX_PAYLOAD}; each class
 * keeps a fixed number of idle buffers ({@link #slots}) in an
 * {@link IdleBuffers}, so taking and giving back take no lock and allocate
 * nothing, and at most {@link #RETAINED_BYTES} are ever kept idle; the rest
 * are left to the GC. (What may be in use at once is bounded by each
 * connection's MemoryBudget.)
 */
final class PayloadBuffers {
    static final int ALIGNMENT = 4096;
    private static final int MIN_SHIFT = 12;
    private static final int MAX_SHIFT = Integer.numberOfTrailingZeros(Nbd.MAX_PAYLOAD);
    /** Idle bytes kept per class below 2 MiB: 64 buffers of 4 KiB (four connections at depth 16), 1 of 2 MiB. */
    private static final int CLASS_BYTES = 2 << 20;
    /** Most idle buffers of one class. */
    private static final int MAX_SLOTS = 64;
    /** The most idle memory all classes together keep: about 76 MiB, 60 of them one buffer of each size from 4 MiB up. */
    static final long RETAINED_BYTES = retainedBytes();

    private final IdleBuffers[] free = new IdleBuffers[MAX_SHIFT - MIN_SHIFT + 1];

    PayloadBuffers() {
        for (int i = 0; i < free.length; i++) {
            free[i] = new IdleBuffers(slots(MIN_SHIFT + i));
        }
    }

    /** Idle buffers kept of size 2^shift: 2 MiB worth, between 1 and 64 (a power of two). */
    static int slots(int shift) {
        return Math.max(1, Math.min(MAX_SLOTS, CLASS_BYTES >> shift));
    }

    private static long retainedBytes() {
        long sum = 0;
        for (int shift = MIN_SHIFT; shift <= MAX_SHIFT; shift++) {
            sum += (long) slots(shift) << shift;
        }
        return sum;
    }

    /** A buffer with position 0 and limit {@code length} (at most {@link Nbd#MAX_PAYLOAD}). */
    ByteBuffer acquire(int length) {
        int shift = classOf(length);
        ByteBuffer b = free[shift - MIN_SHIFT].poll();
        if (b == null) {
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
        int shift = Integer.numberOfTrailingZeros(b.capacity());
        if (shift >= MIN_SHIFT && shift <= MAX_SHIFT) {
            free[shift - MIN_SHIFT].offer(b);
        }
    }

    private static int classOf(int length) {
        if (length < 0 || length > Nbd.MAX_PAYLOAD) {
            throw new IllegalArgumentException("payload length " + length + " outside 0.." + Nbd.MAX_PAYLOAD);
        }
        int shift = 32 - Integer.numberOfLeadingZeros(Math.max(1, length) - 1);
        return Math.max(MIN_SHIFT, shift);
    }
}
