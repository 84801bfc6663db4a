package io.jblock.cli.io;

import io.jblock.filter.blkdebug.BlkdebugNode;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

/**
 * The aio requests of a qemu-io session on an image with a blkdebug node,
 * where a breakpoint may stop a request half way. Each runs on its own
 * virtual thread, and the command that submitted it waits until it has
 * either finished or stopped at a breakpoint: so a run is as deterministic
 * as when requests run on the command's thread, and {@code break} /
 * {@code wait_break} / {@code resume} see a settled state. A request that
 * waits behind a stopped one counts as settled (see {@link #settle}).
 */
final class AioRequests {
    private static final long POLL_NANOS = 100_000;
    private static final long STALL_NANOS = 50_000_000;
    private final List<Thread> running = new ArrayList<>();

    /** Runs {@code request} and returns when it finished or stopped at one of {@code debug}'s breakpoints. */
    void submit(Runnable request, BlkdebugNode debug) {
        Thread t = Thread.ofVirtual().name("qemu-io aio").start(request);
        running.add(t);
        settle(t, debug);
    }

    /** Waits until no request is running except those stopped at a breakpoint (after a resume, say). */
    void settleAll(BlkdebugNode debug) {
        for (Thread t : List.copyOf(running)) {
            settle(t, debug);
        }
        running.removeIf(t -> !t.isAlive());
    }

    /**
     * Waits until {@code t} finished, stopped at a breakpoint, or waits for
     * one that did: a request queued behind a stopped one (its flush waits
     * for the stopped flush, say) stays in flight, as in QEMU, and is taken
     * as settled once it has waited for {@link #STALL_NANOS} without a break.
     */
    private static void settle(Thread t, BlkdebugNode debug) {
        // Polling keeps blkdebug free of any knowledge of qemu-io; a stop is seen within POLL_NANOS.
        long waitingSince = -1;
        while (t.isAlive() && !debug.isSuspended(t)) {
            Thread.State st = t.getState();
            if (st == Thread.State.WAITING || st == Thread.State.BLOCKED) {
                long now = System.nanoTime();
                if (waitingSince < 0) {
                    waitingSince = now;
                } else if (now - waitingSince > STALL_NANOS && debug.hasSuspended()) {
                    return;
                }
            } else {
                waitingSince = -1;
            }
            LockSupport.parkNanos(POLL_NANOS);
        }
    }
}
