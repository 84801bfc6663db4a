package io.jblock.nbd;

import java.io.IOException;
import java.util.concurrent.Semaphore;

/**
 * The bytes of request and reply buffers one connection may hold at once. A
 * request waits for its share before its buffer is allocated. The budget is
 * per connection, not per server, on purpose: a client that pipelines large
 * READs and never reads the replies keeps its buffers until it does, and with
 * a shared budget it would starve every other client. So the server holds at
 * most (connections allowed, -e) times this, as qemu-nbd bounds it per
 * client. Counted in KiB so a large budget fits a semaphore's int.
 */
public final class MemoryBudget {
    /** 128 MiB per connection: four maximum-size requests in flight. */
    public static final long DEFAULT_BYTES = 128L << 20;

    private final Semaphore kib;
    private final int totalKib;

    public MemoryBudget(long bytes) {
        if (bytes < Nbd.MAX_PAYLOAD) {
            throw new IllegalArgumentException("budget " + bytes + " below one maximum payload " + Nbd.MAX_PAYLOAD);
        }
        this.totalKib = (int) Math.min(Integer.MAX_VALUE, bytes >> 10);
        this.kib = new Semaphore(totalKib, true);
    }

    void acquire(long bytes) throws IOException {
        try {
            kib.acquire(units(bytes));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for buffer memory", e);
        }
    }

    void release(long bytes) {
        kib.release(units(bytes));
    }

    private int units(long bytes) {
        return (int) Math.min(totalKib, (bytes + 1023) >> 10);
    }
}
