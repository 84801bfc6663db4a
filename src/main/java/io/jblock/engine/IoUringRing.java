package io.jblock.engine;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * An {@link IoUring} shared by many request threads. The threads that make
 * requests submit them themselves, and whoever enters the kernel reaps every
 * completion it finds there; one platform thread, the reaper, waits in the
 * kernel for completions while nobody else comes by.
 *
 * <pre>
 *   request thread (virtual)                      reaper (platform)        kernel
 *   ------------------------                      -----------------        ------
 *   push Op (one CAS)
 *   holds the ring? (one CAS; else the holder
 *     takes the Op along)
 *   write the SQEs of every pushed Op
 *   io_uring_enter(n, GETEVENTS) ---------------------------------------> works; what
 *                                                                         is done at once
 *   reap every CQE: unpark its thread, <--------------------------------- (page cache) is
 *     or, if it is ours, go on without parking                            posted now
 *   release the ring
 *   park until done                               io_uring_enter(wait 1)
 *                                                 (only while requests
 *                                                  are in the kernel) <-- CQE
 *   runs again   <------------------------------- reap, unpark
 * </pre>
 *
 * <ul>
 *   <li>No hop to another thread on submission: the request's own carrier
 *       makes a non-blocking io_uring_enter, as quick as the fstat and lseek
 *       done elsewhere through FFM. What the kernel finishes during it (reads
 *       and writes served by the page cache) is reaped at once, and the
 *       request goes on without ever parking, as fast as a pread.</li>
 *   <li>The ring is held by one thread at a time, but nobody waits for it:
 *       a thread that finds it held leaves its Op on a lock-free stack, and
 *       the holder, before it lets go, takes everything pushed meanwhile
 *       (one io_uring_enter for the lot) and reaps whatever has come back.</li>
 *   <li>Requests that go to the device (O_DIRECT, page cache misses)
 *       complete later; the reaper, a platform thread, waits for them in the
 *       kernel so that no carrier thread ever blocks there. It waits only
 *       while something is in the kernel, so the page-cache path never wakes
 *       it, and it parks in Java otherwise.</li>
 *   <li>Not IORING_SETUP_SINGLE_ISSUER with DEFER_TASKRUN, which the design
 *       before this one used (a ring thread submitting for everyone): they
 *       batch completion work well, but every request then cost two hops
 *       between threads (to the ring thread and back), and measured slower
 *       than the threads engine (BENCHMARKS.md). COOP_TASKRUN (where the
 *       kernel has it) keeps completion work from interrupting a busy
 *       carrier; it runs at the carrier's next io_uring_enter.</li>
 *   <li>user_data is an index into the table of requests in flight, managed
 *       by the thread holding the ring, so nothing is looked up in a shared
 *       map; each thread reuses one Op (it has at most one request in
 *       flight), so a request allocates nothing.</li>
 * </ul>
 *
 * A request waits for its completion uninterruptibly: until the kernel
 * answers, it may still be reading or writing the request's buffer, so the
 * caller must not get it back early.
 */
final class IoUringRing implements AutoCloseable {
    /** errno for requests after close, as for a closed descriptor. */
    static final int EBADF = 9;
    /** An Op's result when the ring broke or closed before its completion came. */
    private static final int FAILED = Integer.MIN_VALUE;
    /** The top of the stack once the ring has stopped: nothing more is taken. */
    private static final Op STOPPED = new Op();
    private static final VarHandle HELD;
    private static final VarHandle REAPER_IDLE;

    static {
        try {
            var lookup = MethodHandles.lookup();
            HELD = lookup.findVarHandle(IoUringRing.class, "held", boolean.class);
            REAPER_IDLE = lookup.findVarHandle(IoUringRing.class, "reaperIdle", boolean.class);
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
        /** The next older Op on the stack, then the next in the waiting list. */
        Op next;
        int result; // written before done (volatile) is set, read after it is seen
        volatile boolean done;
    }

    private static final ThreadLocal<Op> OPS = ThreadLocal.withInitial(Op::new);

    private final IoUring ring;
    private final Thread reaper;
    /** Pushed and not yet taken by a holder of the ring, newest on top; STOPPED once the ring has stopped. */
    private final AtomicReference<Op> pushed = new AtomicReference<>();
    /** Whether a thread holds the ring: writes SQEs, enters to submit, reaps (through HELD). */
    @SuppressWarnings("unused")
    private volatile boolean held;
    // ---- owned by the thread holding the ring
    /** Requests in the kernel by table index. */
    private final Op[] inFlight;
    /** Free indexes of inFlight, as a stack. */
    private final int[] freeIndexes;
    private int freeCount;
    /** Taken from the stack, oldest first, waiting for a free index. */
    private Op waitingHead;
    private Op waitingTail;
    /** SQEs written and not yet consumed by the kernel (it may take fewer than asked when short of memory). */
    private int queued;
    /** Where reaped completions go; one object for the ring's life. */
    private final IoUring.CompletionSink sink = this::completed;
    /** The Op of the thread holding the ring, completed without an unpark when its CQE is reaped. */
    private Op holderOp;
    // ---- shared
    /** Requests in the kernel now: written by the holder, read by the reaper. */
    private volatile int inKernel;
    /** The reaper is (about to be) parked because nothing is in the kernel; whoever clears it unparks it. */
    @SuppressWarnings("unused")
    private volatile boolean reaperIdle;
    /** Requests are refused from now on. */
    private volatile boolean closing;
    /** Nothing more will be submitted or reaped; the reaper ends. */
    private volatile boolean stopped;
    /** Why the ring stopped before close, if it did. */
    private volatile IOException broken;

    private IoUringRing(IoUring ring, String name) {
        this.ring = ring;
        int capacity = ring.sqEntries();
        this.inFlight = new Op[capacity];
        this.freeIndexes = new int[capacity];
        for (int i = 0; i < capacity; i++) {
            freeIndexes[i] = capacity - 1 - i;
        }
        this.freeCount = capacity;
        this.reaper = Thread.ofPlatform().daemon().name("jblock-io_uring " + name).unstarted(this::reap);
    }

    /**
     * Sets up a ring of {@code entries} and its reaper thread, named after
     * {@code name}; fails with the setup's errno.
     */
    static IoUringRing open(int entries, String name) throws ErrnoException {
        IoUringRing r = new IoUringRing(setUp(entries), name);
        r.reaper.start();
        return r;
    }

    /**
     * With COOP_TASKRUN where the kernel has it (5.19): completion work for a
     * request is queued to the thread that submitted it (a carrier) and run at
     * its next entry into the kernel, rather than by interrupting it at once.
     * Without it where the kernel does not know it (EINVAL).
     */
    private static IoUring setUp(int entries) throws ErrnoException {
        try {
            return IoUring.create(entries, IoUring.IORING_SETUP_COOP_TASKRUN | IoUring.IORING_SETUP_TASKRUN_FLAG);
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
        return submitAndWait(call, opcode, fd, off, addr, len, opFlags);
    }

    private int submitAndWait(String call, byte opcode, int fd, long off, long addr, int len, int opFlags)
            throws IOException {
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
        drive(op, false);
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

    /** Pushes on the stack; false once the ring has stopped. */
    private boolean push(Op op) {
        while (true) {
            Op top = pushed.get();
            if (top == STOPPED) {
                return false;
            }
            op.next = top;
            if (pushed.compareAndSet(top, op)) {
                return true;
            }
        }
    }

    /**
     * Holds the ring if nobody does, submits and reaps; then again while
     * something was pushed or completed meanwhile, since a thread that found
     * the ring held counted on this one to take its Op along. {@code mine} is
     * the caller's Op (null for the reaper): its completion needs no unpark.
     * Afterwards wakes the reaper if requests are in the kernel and it is idle.
     * Returns false if the ring was held by another thread when this one
     * last tried (that thread then does what was left).
     */
    private boolean drive(Op mine, boolean isReaper) {
        boolean heldIt = false;
        while (!stopped && (heldIt = HELD.compareAndSet(this, false, true))) {
            // Once closing, only the reaper reaps: the completion of close's NOP then always ends
            // the reaper's wait in the kernel, whoever submitted it.
            boolean reaps = isReaper || !closing;
            try {
                holderOp = mine;
                turn(reaps);
            } finally {
                holderOp = null;
                HELD.setVolatile(this, false);
            }
            // Published by the CAS (or the kernel's release of the CQ tail) before the check below, and
            // the pushing (or reaping) thread tried to hold the ring after publishing: one of the two sees it.
            Op top = pushed.get();
            if ((top == null || top == STOPPED) && !(reaps && ring.hasCompletions())) {
                break;
            }
        }
        // Pairs with the reaper's "idle = true, then look at inKernel": one sees the other.
        if (inKernel > 0 && (boolean) REAPER_IDLE.getVolatile(this)
                && REAPER_IDLE.compareAndSet(this, true, false)) {
            LockSupport.unpark(reaper);
        }
        return heldIt;
    }

    /**
     * One turn while holding the ring: take the pushed Ops, write their SQEs,
     * enter, reap; again while reaping freed slots that Ops wait for.
     */
    private void turn(boolean reaps) {
        try {
            do {
                takePushed();
                int busy = inKernel;
                while (waitingHead != null && freeCount > 0) {
                    Op op = waitingHead;
                    waitingHead = op.next;
                    op.next = null;
                    int index = freeIndexes[--freeCount];
                    inFlight[index] = op;
                    ring.queue(op.opcode, op.fd, op.off, op.addr, op.len, op.opFlags, index);
                    queued++;
                    busy++;
                }
                if (waitingHead == null) {
                    waitingTail = null;
                }
                inKernel = busy;
                // GETEVENTS without waiting also runs this thread's pending completion work, so what it
                // submitted earlier is posted too.
                if (queued > 0 || ring.taskRunPending()) {
                    queued -= ring.enter(queued, false);
                }
                if (reaps) {
                    inKernel = busy - ring.reap(sink);
                }
            } while (reaps && waitingHead != null && freeCount > 0);
        } catch (ErrnoException | RuntimeException e) {
            breakDown(e);
        }
    }

    /** The ring cannot be used any more: fail everything in flight, waiting, and every later request. */
    private void breakDown(Exception e) {
        broken = new IOException("io_uring failed: " + e.getMessage(), e);
        stopped = true;
        for (int i = 0; i < inFlight.length; i++) {
            fail(inFlight[i]);
            inFlight[i] = null;
        }
        for (Op op = waitingHead; op != null; op = op.next) {
            fail(op);
        }
        waitingHead = null;
        waitingTail = null;
        for (Op op = pushed.getAndSet(STOPPED); op != null && op != STOPPED; op = op.next) {
            fail(op);
        }
        inKernel = 0;
    }

    /** Moves what was pushed to the end of the waiting list, oldest first. */
    private void takePushed() {
        Op top = pushed.get();
        if (top == null || top == STOPPED) {
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

    /** One reaped completion: a request whose thread goes on. */
    private void completed(long userData, int res) {
        int index = (int) userData;
        Op op = inFlight[index];
        inFlight[index] = null;
        freeIndexes[freeCount++] = index;
        op.result = res;
        Thread waiter = op.waiter;
        op.done = true;
        if (op != holderOp) {
            LockSupport.unpark(waiter);
        }
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
     * The reaper: while requests are in the kernel, waits there for a
     * completion and reaps (or leaves it to whoever holds the ring); parks
     * while nothing is in the kernel. Once closing, it reaps alone, and stops
     * the ring when nothing is left.
     */
    private void reap() {
        try {
            while (!stopped) {
                boolean heldIt = drive(null, true);
                if (stopped || closing && stopIfDone()) {
                    break;
                }
                if (heldIt && inKernel > 0) {
                    ring.awaitCompletions();
                    continue;
                }
                // Nothing in the kernel, or another thread holds the ring: it reaps, and wakes this one
                // on its way out if requests are still in the kernel then. Pairs with the end of drive.
                REAPER_IDLE.setVolatile(this, true);
                if (!closing && (inKernel == 0 || (boolean) HELD.getVolatile(this))) {
                    LockSupport.park(this);
                }
                REAPER_IDLE.setVolatile(this, false);
            }
        } catch (ErrnoException | RuntimeException e) {
            hold();
            try {
                breakDown(e);
            } finally {
                HELD.setVolatile(this, false);
            }
        }
    }

    /** At close: stops the ring if nothing is pushed, waiting, queued or in the kernel. */
    private boolean stopIfDone() {
        hold();
        try {
            if (inKernel == 0 && queued == 0 && waitingHead == null && pushed.compareAndSet(null, STOPPED)) {
                stopped = true;
            }
            return stopped;
        } finally {
            HELD.setVolatile(this, false);
        }
    }

    /** Takes the ring, waiting for its holder (who never blocks while holding it) to let go. */
    private void hold() {
        while (!HELD.compareAndSet(this, false, true)) {
            Thread.onSpinWait();
        }
    }

    /**
     * Waits for the requests in flight, stops the reaper and unmaps the
     * ring. Later requests fail with EBADF.
     */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        try {
            // A NOP, reaped by the reaper alone now: when it completes, the reaper is awake (it may have
            // been waiting in the kernel for completions that someone else reaped) and sees closing.
            submitAndWait("io_uring close", IoUring.IORING_OP_NOP, 0, 0, 0, 0, 0);
        } catch (IOException e) {
            // The ring broke: the reaper has stopped and failed everything.
        }
        LockSupport.unpark(reaper);
        if (broken != null && reaper.isAlive()) {
            // Broken while the reaper waits in the kernel: unmapping the ring under it would crash the JVM,
            // and nothing will wake it. Leave both (a daemon thread and a few pages) rather than hang here.
            return;
        }
        joinReaper();
        ring.close();
    }

    private void joinReaper() {
        boolean interrupted = false;
        while (true) {
            try {
                reaper.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Whether the reaper thread is still running (for tests of close). */
    boolean completerAlive() {
        return reaper.isAlive();
    }
}
