package io.jblock.engine;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An {@link IoUring} shared by many request threads: each request submits
 * one operation and parks until its completion arrives, so a virtual thread
 * gives its carrier back while the kernel works.
 *
 * <ul>
 *   <li>In flight: at most the ring's size. A request first takes a slot
 *       (a semaphore permit) and waits for one if all are taken, so the
 *       submission queue never overflows and the completion queue (twice as
 *       big) never drops a completion.</li>
 *   <li>Submitting: under one lock, which the SQ tail and io_uring_enter need
 *       (one producer at a time). The enter is a short downcall: the kernel
 *       either completes the operation at once (data in the page cache) or
 *       hands it to its own workers.</li>
 *   <li>Completing: one platform thread waits in io_uring_enter(GETEVENTS),
 *       reaps the completions and completes each request's future, matched
 *       by user_data.</li>
 * </ul>
 *
 * A request waits for its completion uninterruptibly: until the kernel
 * answers, it may still be reading or writing the request's buffer, so the
 * caller must not get it back early.
 */
final class IoUringRing implements AutoCloseable {
    /** user_data of the NOP that tells the completion thread to stop; requests count from 1. */
    private static final long STOP = 0;
    /** errno for requests after close, as for a closed descriptor. */
    static final int EBADF = 9;

    private final IoUring ring;
    private final int capacity;
    private final Semaphore slots;
    private final ReentrantLock submitLock = new ReentrantLock();
    private final Map<Long, CompletableFuture<Integer>> pending = new ConcurrentHashMap<>();
    private final Thread completer;
    /** Guarded by submitLock. */
    private long nextId = STOP + 1;
    /** Set under submitLock; read without it to fail fast instead of waiting for a slot after close. */
    private volatile boolean closing;
    /** Why the completion thread stopped before close, if it did. */
    private volatile IOException broken;

    IoUringRing(IoUring ring, String name) {
        this.ring = ring;
        this.capacity = ring.sqEntries();
        this.slots = new Semaphore(capacity);
        this.completer = Thread.ofPlatform().daemon().name("jblock-io_uring " + name).unstarted(this::complete);
        completer.start();
    }

    /** How many operations may be in flight at once. */
    int capacity() {
        return capacity;
    }

    /**
     * Submits one operation and waits for its result: what the system call
     * would have returned, or -errno. {@code call} names it in errors.
     */
    int run(String call, byte opcode, int fd, long off, long addr, int len, int opFlags) throws IOException {
        if (closing) {
            throw new ErrnoException(call, EBADF);
        }
        slots.acquireUninterruptibly();
        CompletableFuture<Integer> done = new CompletableFuture<>();
        submitLock.lock();
        try {
            if (closing) {
                slots.release();
                throw new ErrnoException(call, EBADF);
            }
            if (broken != null) {
                slots.release();
                throw broken;
            }
            long id = nextId++;
            pending.put(id, done);
            try {
                ring.submit(opcode, fd, off, addr, len, opFlags, id);
            } catch (ErrnoException | RuntimeException e) {
                pending.remove(id);
                slots.release();
                throw e;
            }
        } finally {
            submitLock.unlock();
        }
        try {
            return done.join(); // parks a virtual thread; not interruptible, see the class comment
        } catch (CompletionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }

    /** The completion thread's loop: wait, reap, complete, until the STOP NOP comes back. */
    private void complete() {
        boolean[] stop = {false};
        try {
            while (!stop[0]) {
                ring.awaitCompletions();
                ring.reap((userData, res) -> {
                    if (userData == STOP) {
                        stop[0] = true;
                        return;
                    }
                    CompletableFuture<Integer> f = pending.remove(userData);
                    if (f != null) {
                        slots.release();
                        f.complete(res);
                    }
                });
            }
        } catch (ErrnoException | RuntimeException e) {
            // The ring cannot be waited on any more: fail everything in flight and every later request.
            IOException failure = new IOException("io_uring completion thread stopped: " + e.getMessage(), e);
            broken = failure;
            pending.values().forEach(f -> f.completeExceptionally(failure));
        }
    }

    /**
     * Waits for the requests in flight, stops the completion thread and
     * unmaps the ring. Later requests fail with EBADF.
     */
    @Override
    public void close() {
        submitLock.lock();
        try {
            if (closing) {
                return;
            }
            closing = true;
        } finally {
            submitLock.unlock();
        }
        slots.acquireUninterruptibly(capacity); // every request in flight has completed
        try {
            if (broken == null) {
                submitLock.lock();
                try {
                    ring.submit(IoUring.IORING_OP_NOP, -1, 0, 0, 0, 0, STOP);
                } finally {
                    submitLock.unlock();
                }
            }
            joinCompleter();
        } catch (ErrnoException e) {
            // The NOP could not be submitted: the ring is unusable, and closing its descriptor below
            // does not wake a thread blocked in it. Leave the daemon thread; nothing waits on it.
        } finally {
            if (!completer.isAlive()) {
                ring.close();
            }
            // Anyone who was waiting for a slot gets one, sees closing and fails with EBADF.
            slots.release(capacity);
        }
    }

    private void joinCompleter() {
        boolean interrupted = false;
        while (true) {
            try {
                completer.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Whether the completion thread is still running (for tests of close). */
    boolean completerAlive() {
        return completer.isAlive();
    }
}
