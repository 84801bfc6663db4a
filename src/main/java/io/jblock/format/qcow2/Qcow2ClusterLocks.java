package io.jblock.format.qcow2;

import java.util.Arrays;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Guest clusters that a write, zero-write or discard is changing now: a
 * second request on one of them waits until the first is done, so two
 * requests never allocate the same cluster twice or copy each other's
 * half-written data (QEMU's list of in-flight cluster allocations). Requests
 * on different clusters go on in parallel.
 *
 * <p>A request takes its whole range of clusters at once, or waits for all of
 * them, so two requests can never hold parts of each other's ranges.
 *
 * <p>The held ranges are a short array (one per request in flight, so about
 * the queue depth) scanned linearly: no boxing or hashing per request.
 */
final class Qcow2ClusterLocks {
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition released = lock.newCondition();
    /** Held ranges {@code [firsts[i], lasts[i]]} for {@code i < held}, in no order. */
    private long[] firsts = new long[64];
    private long[] lasts = new long[64];
    private int held;
    private int waiting;

    /** Holds guest clusters {@code [first, last]} until {@link #release} is called with the same range. */
    void acquire(long first, long last) {
        lock.lock();
        try {
            while (anyBusy(first, last)) {
                waiting++;
                try {
                    released.awaitUninterruptibly();
                } finally {
                    waiting--;
                }
            }
            if (held == firsts.length) {
                firsts = Arrays.copyOf(firsts, held * 2);
                lasts = Arrays.copyOf(lasts, held * 2);
            }
            firsts[held] = first;
            lasts[held] = last;
            held++;
        } finally {
            lock.unlock();
        }
    }

    void release(long first, long last) {
        lock.lock();
        try {
            for (int i = held - 1; i >= 0; i--) {
                if (firsts[i] == first && lasts[i] == last) {
                    held--;
                    firsts[i] = firsts[held];
                    lasts[i] = lasts[held];
                    break;
                }
            }
            if (waiting > 0) {
                released.signalAll();
            }
        } finally {
            lock.unlock();
        }
    }

    private boolean anyBusy(long first, long last) {
        for (int i = 0; i < held; i++) {
            if (firsts[i] <= last && lasts[i] >= first) {
                return true;
            }
        }
        return false;
    }
}
