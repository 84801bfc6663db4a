package io.jblock.format.qcow2;

import java.util.HashSet;
import java.util.Set;
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
 */
final class Qcow2ClusterLocks {
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition released = lock.newCondition();
    private final Set<Long> busy = new HashSet<>();

    /** Holds guest clusters {@code [first, last]} until {@link #release} is called with the same range. */
    void acquire(long first, long last) {
        lock.lock();
        try {
            while (anyBusy(first, last)) {
                released.awaitUninterruptibly();
            }
            for (long c = first; c <= last; c++) {
                busy.add(c);
            }
        } finally {
            lock.unlock();
        }
    }

    void release(long first, long last) {
        lock.lock();
        try {
            for (long c = first; c <= last; c++) {
                busy.remove(c);
            }
            released.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private boolean anyBusy(long first, long last) {
        if (busy.isEmpty()) {
            return false;
        }
        if (last - first + 1 > busy.size()) {
            for (long c : busy) {
                if (c >= first && c <= last) {
                    return true;
                }
            }
            return false;
        }
        for (long c = first; c <= last; c++) {
            if (busy.contains(c)) {
                return true;
            }
        }
        return false;
    }
}
