package io.jblock.engine;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * An {@link IoUring} shared by many request threads and owned by one
 * platform thread, the ring thread, which alone writes SQEs, enters the
 * kernel and reaps completions.
 *
 * <pre>
 *   request threads          ring thread                      kernel
 *   ---------------          -----------                      ------
 *   push Op (one CAS) --->   take all pushed Ops
 *   park                     write their SQEs (up to the ring's size;
 *                            the rest wait in order)
 *                            io_uring_enter(n)  ------------> works
 *                            (nothing to do: sleep in
 *                             io_uring_enter until a CQE) <--- CQE
 *   runs again      <-----   store res in the Op, unpark
 * </pre>
 *
 * <ul>
 *   <li>No lock on the request path: a request pushes its {@link Op} on a
 *       lock-free stack and parks; a virtual thread gives its carrier back
 *       while the kernel works.</li>
 *   <li>One io_uring_enter submits everything pushed since the last one,
 *       and the completions of a batch are reaped by one wake-up. A ring
 *       thread asleep while requests are in the kernel wakes at their next
 *       completion and submits what was pushed meanwhile; it is woken early
 *       (through an eventfd whose read it keeps in flight, {@link
 *       RingWakeup}) only when the kernel's queue would run low.</li>
 *   <li>Because only the ring thread enters, the kernel may skip the locking
 *       for other submitters and defer completion work until the ring
 *       thread waits (IORING_SETUP_SINGLE_ISSUER and DEFER_TASKRUN, where
 *       the kernel has them), instead of interrupting whichever carrier
 *       thread submitted each request.</li>
 *   <li>user_data is an index into the ring thread's table of requests in
 *       flight, so nothing is looked up in a shared map.</li>
 * </ul>
 *
 * A request waits for its completion uninterruptibly: until the kernel
 * answers, it may still be reading or writing the request's buffer, so the
 * caller must not get it back early.
 */
final class IoUringRing implements AutoCloseable {
    /** errno for requests after close, as for a closed descriptor. */
    static final int EBADF = 9;
    /** user_data of the eventfd read that wakes the ring thread; requests use their table index. */
    private static final long WAKE = Long.MAX_VALUE;
    /** An Op's result when the ring broke or closed before its completion came. */
    private static final int FAILED = Integer.MIN_VALUE;
    /** The top of the stack once the ring thread has stopped: nothing more is taken. */
    private static final Op STOPPED = new Op();
    /** A sleeping ring thread is woken when the requests waiting for it are 1/WAKE_RATIO of those in the kernel. */
    private static final int WAKE_RATIO = 4;
    private static final VarHandle SLEEPING;
    private static final VarHandle IN_KERNEL;

    static {
        try {
            var lookup = MethodHandles.lookup();
            SLEEPING = lookup.findVarHandle(IoUringRing.class, "sleeping", boolean.class);
            IN_KERNEL = lookup.findVarHandle(IoUringRing.class, "inKernel", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * One request: what to submit, who waits, and the result. Each thread
     * reuses its own (it has at most one request in flight, since it parks
     * until the completion comes).
     */
    private static final class Op {
        byte opcode;
        int fd;
        long off;
        long addr;
        int len;
        int opFlags;
        Thread waiter;
        /** The next older Op on the stack, then the next in the ring thread's waiting list. */
        Op next;
        /** How many Ops are on the stack with this one on top (to decide on waking the ring thread). */
        int stacked;
        int result; // written before done (volatile) is set, read after it is seen
        volatile boolean done;
    }

    private static final ThreadLocal<Op> OPS = ThreadLocal.withInitial(Op::new);

    private final IoUring ring;
    private final RingWakeup wakeup;
    private final Thread owner;
    /** Pushed and not yet taken by the ring thread, newest on top; STOPPED once it has stopped. */
    private final AtomicReference<Op> pushed = new AtomicReference<>();
    /** Requests in the kernel by table index (ring thread only). */
    private final Op[] inFlight;
    /** Free indexes of inFlight, as a stack (ring thread only). */
    private final int[] freeIndexes;
    private int freeCount;
    /** Taken from the stack, oldest first, waiting for a free index (ring thread only). */
    private Op waitingHead;
    private Op waitingTail;
    /** The ring thread is (about to be) blocked in io_uring_enter; whoever clears it signals the eventfd. */
    @SuppressWarnings("unused") // through SLEEPING
    private volatile boolean sleeping;
    /** Requests in the kernel now (written by the ring thread, read by requests deciding to wake it). */
    @SuppressWarnings("unused") // through IN_KERNEL
    private volatile int inKernel;
    /** Requests handed to the kernel so far (written by the ring thread only; for tests). */
    private volatile long submitted;
    /** Requests are refused from now on. */
    private volatile boolean closing;
    /** Why the ring thread stopped before close, if it did. */
    private volatile IOException broken;
    /** Completions of the eventfd read in the last reap (ring thread only). */
    private int wakesSeen;
    /** Where reaped completions go; one object for the ring's life. */
    private final IoUring.CompletionSink sink = this::completed;

    private IoUringRing(IoUring ring, RingWakeup wakeup, Thread owner) {
        this.ring = ring;
        this.wakeup = wakeup;
        this.owner = owner;
        // One SQE is always the eventfd read; the rest are requests.
        int capacity = ring.sqEntries() - 1;
        this.inFlight = new Op[capacity];
        this.freeIndexes = new int[capacity];
        for (int i = 0; i < capacity; i++) {
            freeIndexes[i] = capacity - 1 - i;
        }
        this.freeCount = capacity;
    }

    /**
     * Sets up a ring of {@code entries} on a new ring thread named after
     * {@code name}; fails with the setup's errno.
     */
    static IoUringRing open(int entries, String name) throws ErrnoException {
        CompletableFuture<IoUringRing> made = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().daemon().name("jblock-io_uring " + name).unstarted(() -> {
            IoUringRing r;
            try {
                r = new IoUringRing(setUp(entries), new RingWakeup(), Thread.currentThread());
            } catch (ErrnoException | RuntimeException e) {
                made.completeExceptionally(e);
                return;
            }
            made.complete(r);
            r.loop();
        });
        t.start();
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return made.get();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } catch (ExecutionException e) {
            if (e.getCause() instanceof ErrnoException errno) {
                throw errno;
            }
            throw new IllegalStateException("io_uring setup failed", e.getCause());
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * On the ring thread, which SINGLE_ISSUER binds the ring to: with the
     * batching flags where the kernel has them, without them where it does
     * not (EINVAL before 6.1).
     */
    private static IoUring setUp(int entries) throws ErrnoException {
        try {
            return IoUring.create(entries, IoUring.IORING_SETUP_SINGLE_ISSUER | IoUring.IORING_SETUP_DEFER_TASKRUN);
        } catch (ErrnoException e) {
            if (e.errno() != Libc.EINVAL) {
                throw e;
            }
            return IoUring.create(entries);
        }
    }

    /** How many requests may be in the kernel at once (more wait in order). */
    int capacity() {
        return inFlight.length;
    }

    /**
     * Submits one operation and waits for its result: what the system call
     * would have returned, or -errno. {@code call} names it in errors.
     */
    int run(String call, byte opcode, int fd, long off, long addr, int len, int opFlags) throws IOException {
        if (closing) {
            throw new ErrnoException(call, EBADF);
        }
        Op op = OPS.get();
        op.opcode = opcode;
        op.fd = fd;
        op.off = off;
        op.addr = addr;
        op.len = len;
        op.opFlags = opFlags;
        op.waiter = Thread.currentThread();
        op.done = false;
        if (!push(op)) {
            op.waiter = null;
            throw broken != null ? broken : new ErrnoException(call, EBADF);
        }
        // Pairs with the ring thread's "sleeping = true, then look at the stack": one sees the other.
        if ((boolean) SLEEPING.getVolatile(this) && worthWaking(op.stacked)
                && SLEEPING.compareAndSet(this, true, false)) {
            wakeup.signal();
        }
        boolean interrupted = false;
        while (!op.done) {
            LockSupport.park(this);
            if (Thread.interrupted()) {
                interrupted = true; // not now: the kernel may still use the buffer (see the class comment)
            }
        }
        op.waiter = null;
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (op.result == FAILED) {
            throw broken != null ? broken : new ErrnoException(call, EBADF);
        }
        return op.result;
    }

    /** Pushes on the stack; false once the ring thread has stopped. */
    private boolean push(Op op) {
        while (true) {
            Op top = pushed.get();
            if (top == STOPPED) {
                return false;
            }
            op.next = top;
            op.stacked = top == null ? 1 : top.stacked + 1;
            if (pushed.compareAndSet(top, op)) {
                return true;
            }
        }
    }

    /**
     * Whether a sleeping ring thread should be woken for {@code waiting}
     * pushed requests: when the kernel has none of ours (nothing else would
     * wake it), or when those waiting are a quarter of those in the kernel
     * (the device's queue is running low). Otherwise the next completion
     * wakes it and it submits them all in one call.
     */
    private boolean worthWaking(int waiting) {
        int busy = (int) IN_KERNEL.getVolatile(this);
        return busy == 0 || waiting * WAKE_RATIO >= busy;
    }

    /** The ring thread: submit what is pushed, wait when there is nothing to do, complete what comes back. */
    private void loop() {
        int queued = 0;
        boolean wakeArmed = false;
        int busy = 0;
        int taken = 0;
        try {
            while (true) {
                if (!wakeArmed) {
                    ring.queue(IoUring.IORING_OP_READ, wakeup.fd(), 0, wakeup.readBuffer().address(), 8, 0, WAKE);
                    queued++;
                    wakeArmed = true;
                }
                takePushed();
                while (waitingHead != null && freeCount > 0) {
                    Op op = waitingHead;
                    waitingHead = op.next;
                    op.next = null;
                    int index = freeIndexes[--freeCount];
                    inFlight[index] = op;
                    ring.queue(op.opcode, op.fd, op.off, op.addr, op.len, op.opFlags, index);
                    queued++;
                    busy++;
                    taken++;
                }
                if (taken > 0) {
                    submitted += taken; // one writer: the ring thread
                    taken = 0;
                }
                if (waitingHead == null) {
                    waitingTail = null;
                }
                IN_KERNEL.setRelease(this, busy);
                // Submit and, unless more was pushed meanwhile, wait for a completion, in one call.
                SLEEPING.setVolatile(this, true);
                // Closing with requests still in the kernel: their completions wake it, as ever.
                boolean wait = pushed.get() == null && !(closing && busy == 0);
                if (queued > 0 || wait) {
                    queued -= ring.enter(queued, wait);
                }
                SLEEPING.setVolatile(this, false);
                wakesSeen = 0;
                busy -= ring.reap(sink);
                if (wakesSeen > 0) {
                    busy += wakesSeen; // the eventfd read is not a request
                    wakeArmed = false;
                }
                if (closing && busy == 0 && queued == 0 && waitingHead == null
                        && pushed.compareAndSet(null, STOPPED)) {
                    return;
                }
            }
        } catch (ErrnoException | RuntimeException e) {
            // The ring cannot be used any more: fail everything in flight, waiting, and every later request.
            broken = new IOException("io_uring thread stopped: " + e.getMessage(), e);
            for (Op op : inFlight) {
                fail(op);
            }
            for (Op op = waitingHead; op != null; op = op.next) {
                fail(op);
            }
            for (Op op = pushed.getAndSet(STOPPED); op != null && op != STOPPED; op = op.next) {
                fail(op);
            }
        }
    }

    /** Moves what was pushed to the end of the waiting list, oldest first. */
    private void takePushed() {
        Op top = pushed.get();
        if (top == null) {
            return;
        }
        top = pushed.getAndSet(null);
        // The stack is newest first: reverse it.
        Op oldest = null;
        Op newestAfter = top;
        while (top != null) {
            Op older = top.next;
            top.next = oldest;
            oldest = top;
            top = older;
        }
        if (waitingTail == null) {
            waitingHead = oldest;
        } else {
            waitingTail.next = oldest;
        }
        waitingTail = newestAfter;
    }

    /** One reaped completion: the wake-up read, or a request whose thread is unparked. */
    private void completed(long userData, int res) {
        if (userData == WAKE) {
            wakesSeen++;
            return;
        }
        int index = (int) userData;
        Op op = inFlight[index];
        inFlight[index] = null;
        freeIndexes[freeCount++] = index;
        op.result = res;
        Thread waiter = op.waiter;
        op.done = true;
        LockSupport.unpark(waiter);
    }

    private static void fail(Op op) {
        if (op != null && !op.done) {
            Thread waiter = op.waiter;
            op.result = FAILED;
            op.done = true;
            LockSupport.unpark(waiter);
        }
    }

    /**
     * Waits for the requests in flight, stops the ring thread and unmaps the
     * ring. Later requests fail with EBADF.
     */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        wakeup.signal();
        joinOwner();
        ring.close();
        wakeup.close();
    }

    private void joinOwner() {
        boolean interrupted = false;
        while (true) {
            try {
                owner.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Whether close has begun: requests are refused (EBADF) from then on. */
    boolean closing() {
        return closing;
    }

    /** How many requests went through the ring so far (for tests of which path a request took). */
    long requestsSubmitted() {
        return submitted;
    }

    /** Whether the ring thread is still running (for tests of close). */
    boolean completerAlive() {
        return owner.isAlive();
    }
}
