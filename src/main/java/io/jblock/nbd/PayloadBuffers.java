package io.jblock.nbd;

import io.jblock.engine.IdleBuffers;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Direct, 4 KiB-aligned buffers for request and reply payloads, reused
 * between requests. Direct memory lets the socket and the file be read and
 * written without the JDK's hidden copy through a temporary direct buffer,
 * and the alignment lets O_DIRECT use them without a bounce. Buffers come in
 * power-of-two classes from 4 KiB to {@link Nbd#MAX_PAYLOAD}; each class
 * keeps its idle buffers in an {@link IdleBuffers}, so taking and giving back
 * take no lock and allocate nothing.
 *
 * <p>At most {@link #RETAINED_BYTES} are kept idle, the rest are left to the
 * GC: small classes (up to {@link #SMALL_MAX}) keep a fixed number each, 64,
 * so four connections at depth 16 find theirs; large classes keep up to
 * {@link Nbd#MAX_IN_FLIGHT} each but share one byte count,
 * {@link #LARGE_BYTES}, the only shared counter, touched only for buffers
 * whose copy costs far more than it. A buffer the pool cannot keep is freed
 * only when the GC finds it, and the GC runs rarely when requests allocate
 * little on the heap: a pool too small for a connection's depth (two 1 MiB
 * buffers kept at depth 4) let 1 MiB reads and writes grow the server's RSS
 * to 200-300 MiB. (What may be in use at once is bounded by each
 * connection's MemoryBudget.)
 */
final class PayloadBuffers {
    static final int ALIGNMENT = 4096;
    private static final int MIN_SHIFT = 12;
    private static final int MAX_SHIFT = Integer.numberOfTrailingZeros(Nbd.MAX_PAYLOAD);
    /** The largest small class: 128 KiB. */
    static final int SMALL_MAX = 128 << 10;
    private static final int SMALL_SLOTS = 64;
    /** Idle bytes the large classes keep together. */
    static final long LARGE_BYTES = 48L << 20;
    /** The most idle memory kept: 64 small buffers of each class up to 128 KiB (~16 MiB), and 48 MiB of large ones. */
    static final long RETAINED_BYTES = smallBytes() + LARGE_BYTES;

    private final IdleBuffers[] free = new IdleBuffers[MAX_SHIFT - MIN_SHIFT + 1];
    /** Bytes of large buffers kept idle. */
    private final AtomicLong large = new AtomicLong();

    PayloadBuffers() {
        for (int i = 0; i < free.length; i++) {
            free[i] = new IdleBuffers(slots(MIN_SHIFT + i));
        }
    }

    /** Idle buffers a class of size 2^shift may keep. */
    static int slots(int shift) {
        return (1 << shift) <= SMALL_MAX ? SMALL_SLOTS : Nbd.MAX_IN_FLIGHT;
    }

    private static long smallBytes() {
        long sum = 0;
        for (int shift = MIN_SHIFT; 1 << shift <= SMALL_MAX; shift++) {
            sum += (long) slots(shift) << shift;
        }
        return sum;
    }

    /** A buffer with position 0 and limit {@code length} (at most {@link Nbd#MAX_PAYLOAD}). */
    ByteBuffer acquire(int length) {
        int shift = classOf(length);
        ByteBuffer b = free[shift - MIN_SHIFT].poll();
        if (b != null && b.capacity() > SMALL_MAX) {
            large.addAndGet(-b.capacity());
        }
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
        if (shift < MIN_SHIFT || shift > MAX_SHIFT) {
            return;
        }
        if (b.capacity() <= SMALL_MAX) {
            free[shift - MIN_SHIFT].offer(b);
        } else if (large.addAndGet(b.capacity()) > LARGE_BYTES || !free[shift - MIN_SHIFT].offer(b)) {
            large.addAndGet(-b.capacity());
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
