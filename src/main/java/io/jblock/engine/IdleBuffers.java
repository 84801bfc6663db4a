package io.jblock.engine;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A bounded, lock-free set of idle buffers of one size: a fixed array of
 * slots, each empty or holding one buffer. {@link #poll} empties the first
 * full slot it finds and {@link #offer} fills the first empty one, each with
 * one compare-and-set and no allocation; a buffer offered to a full set is
 * refused and left to the garbage collector. Every thread starts its search
 * at its own slot, so threads that take and give back at the same time
 * mostly touch different slots. So at most {@code slots} buffers are ever
 * kept, whatever the load.
 *
 * <p>Compared with a concurrent queue plus a counter (what the pools used
 * before): no node allocated per offer, no shared head and counter that
 * every call writes.
 */
public final class IdleBuffers {
    private final AtomicReferenceArray<ByteBuffer> slots;
    private final int mask;

    /** @param slots how many buffers may be kept idle; rounded up to a power of two (0 keeps none) */
    public IdleBuffers(int slots) {
        if (slots < 0) {
            throw new IllegalArgumentException("slots " + slots + " < 0");
        }
        int n = slots <= 1 ? slots : Integer.highestOneBit(slots - 1) << 1;
        this.slots = new AtomicReferenceArray<>(n);
        this.mask = n - 1;
    }

    /** How many buffers may be kept at most. */
    public int capacity() {
        return slots.length();
    }

    /** An idle buffer, or null if none is kept. */
    public ByteBuffer poll() {
        int n = slots.length();
        int start = home();
        for (int i = 0; i < n; i++) {
            int s = (start + i) & mask;
            ByteBuffer b = slots.get(s);
            if (b != null && slots.compareAndSet(s, b, null)) {
                return b;
            }
        }
        return null;
    }

    /** Keeps {@code b} for a later {@link #poll}; false (and nothing kept) when every slot is full. */
    public boolean offer(ByteBuffer b) {
        int n = slots.length();
        int start = home();
        for (int i = 0; i < n; i++) {
            int s = (start + i) & mask;
            if (slots.get(s) == null && slots.compareAndSet(s, null, b)) {
                return true;
            }
        }
        return false;
    }

    /** This thread's first slot: thread ids spread by a multiplicative hash. */
    private int home() {
        return (int) (Thread.currentThread().threadId() * 0x9E3779B97F4A7C15L >>> 40) & mask;
    }
}
