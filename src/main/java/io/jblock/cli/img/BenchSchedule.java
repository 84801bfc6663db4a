package io.jblock.cli.img;

import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The order in which {@code img bench} issues its requests and flushes, as
 * qemu-img's completion callback does, shared by the worker threads that
 * keep {@code depth} requests in flight.
 *
 * <p>Requests go to offset, offset + step, ... wrapping modulo the image
 * size. With a flush interval, a completion after which the number of
 * requests not yet issued is a multiple of the interval asks for a flush
 * (this includes the end, when none is left). With draining (the default),
 * no new request is issued from then until every request in flight has
 * completed and the flush after them is done; without it the flush runs
 * beside the requests.
 */
final class BenchSchedule {
    /** What the thread that reported a completion must do next. */
    enum After {
        /** Carry on with the next request. */
        NOTHING,
        /** Flush now, then call {@link #flushDone()}: every request in flight has completed. */
        DRAINED_FLUSH,
        /** Start a flush beside the requests still in flight. */
        UNDRAINED_FLUSH
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition resumed = lock.newCondition();
    private final long imageSize;
    private final long step;
    private final int flushInterval;
    private final boolean drain;
    /** Requests not completed yet, in flight or not issued. */
    private int left;
    private int inFlight;
    private long offset;
    /** A drained flush is due or running: nothing new is issued. */
    private boolean draining;
    /** A request failed: nothing new is issued and the workers stop. */
    private boolean stopped;

    BenchSchedule(int count, long offset, long step, long imageSize, int flushInterval, boolean drain) {
        this.left = count;
        this.offset = offset;
        this.step = step;
        this.imageSize = imageSize;
        this.flushInterval = flushInterval;
        this.drain = drain;
    }

    /**
     * The offset of the next request to issue, waiting while a drained flush
     * is pending; -1 when nothing is left to issue.
     */
    long next() {
        lock.lock();
        try {
            while (draining && !stopped) {
                resumed.awaitUninterruptibly();
            }
            if (stopped || left <= inFlight) {
                return -1;
            }
            inFlight++;
            long o = offset;
            // An empty image would divide by zero here (qemu-img 7.2 dies of SIGFPE); its first request
            // fails with EIO instead, as any request past the end does.
            offset = imageSize == 0 ? offset + step : (offset + step) % imageSize;
            return o;
        } finally {
            lock.unlock();
        }
    }

    /** Records one completed request and says whether a flush is due. */
    After completed() {
        lock.lock();
        try {
            int notIssued = left - inFlight;
            left--;
            inFlight--;
            if (flushInterval == 0 || notIssued % flushInterval != 0) {
                return After.NOTHING;
            }
            if (!drain) {
                return After.UNDRAINED_FLUSH;
            }
            draining = true;
            return inFlight == 0 ? After.DRAINED_FLUSH : After.NOTHING;
        } finally {
            lock.unlock();
        }
    }

    /** The drained flush is done: requests are issued again. */
    void flushDone() {
        lock.lock();
        try {
            draining = false;
            resumed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** A request or flush failed: workers stop taking requests. */
    void stop() {
        lock.lock();
        try {
            stopped = true;
            resumed.signalAll();
        } finally {
            lock.unlock();
        }
    }
}
