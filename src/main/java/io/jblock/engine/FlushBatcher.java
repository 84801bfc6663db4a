package io.jblock.engine;

import java.io.IOException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Coalesces concurrent fdatasync calls on one file, as QEMU's bdrv_co_flush
 * does with its flush generations: a caller whose data an fdatasync already
 * running may not cover waits for it to end and then starts one more, which
 * covers every caller that arrived meanwhile. With writethrough or
 * directsync at depth 32, that is a handful of fdatasyncs instead of 32.
 *
 * <pre>
 *   requested: generation of the newest caller    (caller n arrives: n = ++requested)
 *   started:   requested when the running sync began; it covers callers 1..started
 *   synced:    the newest generation a finished sync covered
 * </pre>
 *
 * A failed sync fails every caller it covered with the same error, so no
 * caller takes a later successful fdatasync (which Linux may report after
 * it has dropped the failed pages) as proof that its data is safe.
 */
final class FlushBatcher {
    /** The system call being batched. */
    @FunctionalInterface
    interface Sync {
        void run() throws IOException;
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition ended = lock.newCondition();
    private long requested;
    private long synced;
    private boolean running;
    /** The newest failed sync: the generations it covered, and why. */
    private long failedFrom;
    private long failedTo;
    private IOException failure;

    /** Runs {@code sync}, or waits for one that covers this call. */
    void sync(Sync sync) throws IOException {
        long started;
        lock.lock();
        try {
            long mine = ++requested;
            while (true) {
                if (failure != null && mine >= failedFrom && mine <= failedTo) {
                    throw failure;
                }
                if (synced >= mine) {
                    return;
                }
                if (!running) {
                    break;
                }
                ended.awaitUninterruptibly();
            }
            running = true;
            started = requested;
        } finally {
            lock.unlock();
        }
        boolean ok = false;
        IOException error = null;
        try {
            sync.run();
            ok = true;
        } catch (IOException e) {
            error = e;
            throw e;
        } finally {
            lock.lock();
            try {
                running = false;
                if (ok) {
                    synced = started;
                } else {
                    failedFrom = synced + 1;
                    failedTo = started;
                    failure = error != null ? error : new IOException("fdatasync failed");
                }
                ended.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }
}
