package io.jblock.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Shared and exclusive locks on byte ranges of one file, granted in arrival
 * order: a request waits only for earlier requests that overlap it and
 * conflict (at least one of the two exclusive). Waiting only on earlier ones
 * makes it fair (a stream of shared holders cannot starve an exclusive one)
 * and free of deadlock.
 *
 * <p>Why ranges and not one read/write lock: with O_DIRECT, an unaligned
 * write is a read-modify-write of the enclosing aligned blocks, and it must
 * exclude every other write touching those blocks (two RMWs of one block, or
 * an RMW and an aligned write, would otherwise write back stale bytes over
 * each other). One read/write lock would also serialise RMWs of blocks far
 * apart; a range lock keeps those in parallel, as QEMU's serialising tracked
 * requests do.
 *
 * <p>Waits are uninterruptible: an interrupt must never reach a thread that
 * is about to do FileChannel I/O.
 */
public final class RangeLock {
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition released = lock.newCondition();
    /** Held and waiting requests, oldest first. */
    private final List<Held> queue = new ArrayList<>();

    /** A granted lock; closing it releases the range. */
    public final class Held implements AutoCloseable {
        private final long start;
        private final long end;
        private final boolean exclusive;

        private Held(long start, long end, boolean exclusive) {
            this.start = start;
            this.end = end;
            this.exclusive = exclusive;
        }

        private boolean conflictsWith(Held other) {
            return (exclusive || other.exclusive) && start < other.end && other.start < end;
        }

        @Override
        public void close() {
            lock.lock();
            try {
                queue.remove(this);
                released.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Locks [start, end) for a request that may share it with other shared ones (aligned writes, zeroing). */
    public Held lockShared(long start, long end) {
        return acquire(start, end, false);
    }

    /** Locks [start, end) for this request alone (read-modify-write). */
    public Held lockExclusive(long start, long end) {
        return acquire(start, end, true);
    }

    private Held acquire(long start, long end, boolean exclusive) {
        Held me = new Held(start, end, exclusive);
        lock.lock();
        try {
            queue.add(me);
            while (blockedByEarlier(me)) {
                released.awaitUninterruptibly();
            }
            return me;
        } finally {
            lock.unlock();
        }
    }

    private boolean blockedByEarlier(Held me) {
        for (Held h : queue) {
            if (h == me) {
                return false;
            }
            if (h.conflictsWith(me)) {
                return true;
            }
        }
        throw new IllegalStateException("lock request missing from its queue");
    }
}
