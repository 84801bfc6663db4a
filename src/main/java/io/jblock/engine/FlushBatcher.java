package io.jblock.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Group commit for flushes: concurrent callers share one run of a flush, and
 * every caller returns only after a run that <em>started after it arrived</em>
 * has ended. That is the durability rule: whatever a caller finished writing
 * before it asked is covered by the run it is given. A file's fdatasync and a
 * node's whole flush (its caches, its fdatasync, its children) both use it.
 *
 * <p>QEMU's bdrv_co_flush does the same job with write generations: a flush
 * that arrives while another runs waits for it, and then skips its own
 * fdatasync when no write happened since. Here a caller that arrives while a
 * run is going waits for that run (which began before the caller's data may
 * have reached the OS, so it proves nothing for it) and then either starts the
 * next run, or joins the next run that another waiter has just started:
 *
 * <pre>
 *   calls:  1       2 3 4 5                       6   7
 *   runs:   [A: covers 1 ..........][B: covers 2..5 ..........][C: covers 6..7 ...]
 *   2..5 arrive while A runs, which proves nothing for them; they share B.
 * </pre>
 *
 * With writethrough or directsync at depth 32 that is about one fdatasync per
 * batch of requests that completed during the previous one, instead of one each.
 *
 * <p>Callers can be announced: a writethrough write in flight will ask for a
 * flush as soon as it is done ({@link #expect()}). A run about to start first
 * waits, briefly, until every announced caller has arrived: those announced
 * at that moment and those announced while it waits (writers released by the
 * previous run start their writes one after another, a scheduling delay
 * apart), so one run covers them all. Without that, the run starts while the
 * later writes are still in the device queue: under O_DIRECT its fdatasync
 * then waits behind them anyway, and they all need the next run. Writers do
 * not keep the wait going: one that arrived waits for the run, so it cannot
 * announce another write meanwhile. QEMU gets the same grouping from its
 * single-threaded event loop: the flushes queue up behind the one running
 * while every request waits, and the next fdatasync finds nothing in flight.
 * The wait only delays a run; what a run covers is still decided when it
 * starts, so it is never a durability matter, and it is bounded
 * ({@link #GATHER_LIMIT_NANOS}) so a write that hangs cannot hold flushes up.
 *
 * <p>A failed run fails every caller it covered, with its error, even if a
 * later run succeeds before that caller wakes up: after a failed fdatasync
 * Linux may have dropped the dirty pages, and a later fdatasync can succeed
 * without them (fsyncgate). Because runs follow one another and each covers
 * every arrival before its start, "a run that started after arrival n failed"
 * is simply n &lt;= the newest failed run's {@code covers}.
 *
 * <p>When a run ends, its runner wakes every waiter itself, and a waiter
 * reads the outcome without the lock: with a condition variable each waiter
 * would have to take the lock back in turn before returning, a chain of
 * wake-ups one scheduling delay apart (about 0.1 ms each on a loaded
 * machine, so 3 ms before the last of 32 writers could issue its next write).
 *
 * <p>A flush may be called again from inside its own run (a node whose flush
 * writes to itself): the thread running it then runs the nested call in
 * place, as a reentrant lock would let it.
 */
public final class FlushBatcher {
    /**
     * How long a run about to start waits for announced callers: longer than a
     * 4 KiB O_DIRECT write takes on a loaded disk, short against a stuck one.
     */
    static final long GATHER_LIMIT_NANOS = 10_000_000;

    /** The operation being shared. */
    @FunctionalInterface
    public interface Sync<E extends Exception> {
        void run() throws E;
    }

    /** A parked caller, woken by the runner of the run it waits for. */
    private static final class Waiter {
        final Thread thread = Thread.currentThread();
        volatile boolean woken;
    }

    private final long gatherLimitNanos;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition announcedArrived = lock.newCondition();
    /** Callers so far; the n-th caller to arrive has arrival number n. Guarded by lock. */
    private long arrivals;
    /** The thread of the run going on, or null. Guarded by lock. */
    private Thread runner;
    /** Callers waiting for the run going on to end. Guarded by lock. */
    private List<Waiter> waiters = new ArrayList<>();
    /** Announced callers not arrived or withdrawn yet. Guarded by lock. */
    private int announced;
    /** A run is waiting for announced callers on {@link #announcedArrived}. Guarded by lock. */
    private boolean gathering;
    /** Runs started, for tests. Guarded by lock. */
    private long runs;
    /** The newest successful run covered arrivals 1..synced. Written under lock, read without. */
    private volatile long synced;
    /**
     * The newest failed run covered arrivals 1..failedCovers, and failed with
     * {@link #failure}, which is written first. Written under lock, read without.
     */
    private volatile long failedCovers;
    private volatile Throwable failure;

    public FlushBatcher() {
        this(GATHER_LIMIT_NANOS);
    }

    /** With another bound on the wait for announced callers (tests). */
    FlushBatcher(long gatherLimitNanos) {
        this.gatherLimitNanos = gatherLimitNanos;
    }

    /**
     * Announces a caller: the current thread will call {@link #sync(Sync,
     * boolean)} with {@code announced} true, or {@link #withdraw()}.
     */
    public void expect() {
        lock.lock();
        try {
            announced++;
        } finally {
            lock.unlock();
        }
    }

    /** An announced caller will not come after all (its write failed). */
    public void withdraw() {
        lock.lock();
        try {
            announcedCame();
        } finally {
            lock.unlock();
        }
    }

    private void announcedCame() {
        announced--;
        if (gathering && announced == 0) {
            announcedArrived.signal();
        }
    }

    /**
     * Runs {@code sync}, or waits for a run of it that started after this
     * call arrived. Throws what that run threw.
     */
    public <E extends Exception> void sync(Sync<E> sync) throws E {
        sync(sync, false);
    }

    /**
     * {@link #sync(Sync)}, from a caller that {@link #expect() announced}
     * itself ({@code announced} true) or not.
     */
    public <E extends Exception> void sync(Sync<E> sync, boolean announcedCaller) throws E {
        long mine;
        lock.lock();
        try {
            if (runner == Thread.currentThread()) {
                // Nested in its own run: run in place (waiting would wait for itself).
                if (announcedCaller) {
                    announcedCame();
                }
                lock.unlock();
                try {
                    sync.run();
                    return;
                } finally {
                    lock.lock();
                }
            }
            mine = ++arrivals;
            if (announcedCaller) {
                announcedCame();
            }
        } finally {
            lock.unlock();
        }
        boolean interrupted = false;
        try {
            while (true) {
                if (mine <= failedCovers) {
                    rethrow(failure);
                }
                if (mine <= synced) {
                    return;
                }
                Waiter waiter = null;
                long covers = 0;
                lock.lock();
                try {
                    if (mine <= failedCovers || mine <= synced) {
                        continue;
                    }
                    if (runner != null) {
                        waiter = new Waiter();
                        waiters.add(waiter);
                    } else {
                        runner = Thread.currentThread();
                        runs++;
                        interrupted |= gather();
                        covers = arrivals;
                    }
                } finally {
                    lock.unlock();
                }
                if (waiter != null) {
                    interrupted |= park(waiter);
                } else {
                    run(sync, covers);
                    return;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Runs {@code sync} as the run covering arrivals 1..covers, then wakes its waiters. */
    private <E extends Exception> void run(Sync<E> sync, long covers) throws E {
        Throwable failed = null;
        try {
            sync.run();
        } catch (Throwable e) {
            failed = e;
            throw e;
        } finally {
            List<Waiter> woken;
            lock.lock();
            try {
                runner = null;
                if (failed == null) {
                    synced = covers;
                } else {
                    failure = failed;
                    failedCovers = covers;
                }
                woken = waiters;
                waiters = new ArrayList<>();
            } finally {
                lock.unlock();
            }
            for (Waiter w : woken) {
                w.woken = true;
                LockSupport.unpark(w.thread);
            }
        }
    }

    /**
     * Parks until the runner wakes {@code w}. Not interruptible: an interrupt
     * would close a FileChannel the next run uses. Returns whether the thread
     * was interrupted meanwhile (the flag is cleared so park does not spin).
     */
    private static boolean park(Waiter w) {
        boolean interrupted = false;
        while (!w.woken) {
            LockSupport.park(w);
            if (Thread.interrupted()) {
                interrupted = true;
            }
        }
        return interrupted;
    }

    /**
     * Before a run starts: waits until every announced caller has arrived (or
     * withdrawn), those announced during the wait included, or until
     * {@link #GATHER_LIMIT_NANOS} after it began. Callers arriving meanwhile
     * wait for the run, which covers them. Holds the lock. Returns whether the
     * thread was interrupted, which ends the wait early.
     */
    private boolean gather() {
        if (announced == 0) {
            return false;
        }
        long deadline = System.nanoTime() + gatherLimitNanos;
        gathering = true;
        try {
            while (announced > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                try {
                    announcedArrived.awaitNanos(left);
                } catch (InterruptedException e) {
                    return true;
                }
            }
            return false;
        } finally {
            gathering = false;
        }
    }

    /** Announced callers not arrived or withdrawn yet (tests). */
    int announcedForTests() {
        lock.lock();
        try {
            return announced;
        } finally {
            lock.unlock();
        }
    }

    /** Whether a run is waiting for announced callers (tests). */
    boolean gatheringForTests() {
        lock.lock();
        try {
            return gathering;
        } finally {
            lock.unlock();
        }
    }

    /** Callers so far (tests: to know that a thread has arrived). */
    long arrivalsForTests() {
        lock.lock();
        try {
            return arrivals;
        } finally {
            lock.unlock();
        }
    }

    /** How many runs have started: with callers that overlap, fewer than the calls. */
    public long runs() {
        lock.lock();
        try {
            return runs;
        } finally {
            lock.unlock();
        }
    }

    /**
     * A waiter throws the failed run's own exception, which can only be an
     * unchecked one or the {@code E} of the {@link Sync} that ran. Several
     * threads may throw the same instance, as several callers of one failed
     * system call would each get its errno.
     */
    @SuppressWarnings("unchecked")
    private static <E extends Exception> void rethrow(Throwable failure) throws E {
        if (failure instanceof RuntimeException r) {
            throw r;
        }
        if (failure instanceof Error e) {
            throw e;
        }
        throw (E) failure;
    }
}
