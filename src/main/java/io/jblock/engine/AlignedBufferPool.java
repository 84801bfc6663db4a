package io.jblock.engine;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;

/**
 * Bounce buffers for O_DIRECT: direct buffers of one size whose address is
 * aligned, kept for reuse so the request path does not allocate. Each buffer
 * comes from its own automatic arena, so a buffer the pool does not keep is
 * freed by the garbage collector like any other object. Taking and giving
 * back take no lock (see {@link IdleBuffers}); at most {@code maxIdle}
 * (rounded up to a power of two) buffers are kept.
 */
final class AlignedBufferPool {
    private final int bufferSize;
    private final int alignment;
    private final IdleBuffers idle;

    /**
     * @param bufferSize a multiple of {@code alignment}
     * @param alignment  a power of two, the address alignment of every buffer
     * @param maxIdle    how many returned buffers are kept (rounded up to a power of two); more in flight at
     *                   once are allocated and dropped
     */
    AlignedBufferPool(int bufferSize, int alignment, int maxIdle) {
        if (bufferSize % alignment != 0) {
            throw new IllegalArgumentException("bounce size " + bufferSize + " is not a multiple of " + alignment);
        }
        this.bufferSize = bufferSize;
        this.alignment = alignment;
        this.idle = new IdleBuffers(maxIdle);
    }

    int bufferSize() {
        return bufferSize;
    }

    /** A buffer for this caller alone until it gives it back; position 0, limit its capacity. */
    ByteBuffer take() {
        ByteBuffer b = idle.poll();
        if (b == null) {
            return Arena.ofAuto().allocate(bufferSize, alignment).asByteBuffer();
        }
        return b.clear();
    }

    void give(ByteBuffer b) {
        idle.offer(b);
    }
}
