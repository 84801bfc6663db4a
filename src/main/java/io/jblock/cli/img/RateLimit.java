package io.jblock.cli.img;

import java.util.concurrent.locks.LockSupport;

/**
 * {@code convert -r}: at most {@code bytesPerSecond} written on average,
 * by making a writer wait until the bytes so far fit the rate. 0 is no limit.
 */
final class RateLimit {
    private final long bytesPerSecond;
    private final long start = System.nanoTime();
    private long bytes;

    RateLimit(long bytesPerSecond) {
        this.bytesPerSecond = bytesPerSecond;
    }

    /** Accounts {@code n} bytes about to be written, waiting first if they would go over the rate. */
    void take(long n) {
        if (bytesPerSecond <= 0) {
            return;
        }
        long due;
        synchronized (this) {
            // The time by which the bytes before these may have been written.
            due = start + (long) (bytes / (double) bytesPerSecond * 1e9);
            bytes += n;
        }
        long wait;
        while ((wait = due - System.nanoTime()) > 0) {
            LockSupport.parkNanos(wait);
        }
    }
}
