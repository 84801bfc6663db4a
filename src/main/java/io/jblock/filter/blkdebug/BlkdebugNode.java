package io.jblock.filter.blkdebug;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.DebugEvent;
import io.jblock.block.Errno;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.LinkedList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;

/**
 * {@code driver=blkdebug}: a filter over its "image" child that injects errors
 * and suspends requests by rule, as QEMU's blkdebug. Formats above report
 * {@link DebugEvent}s to it (raw: read_aio, write_aio; every node's flush:
 * flush_to_os, flush_to_disk; qcow2: its metadata events).
 *
 * <h2>Rules and state</h2>
 * The node has a state, 1 when opened. When an event is reported, every rule
 * for that event whose state is 0 or the current state acts, the most
 * recently defined first:
 * <ul>
 *   <li>inject-error rules replace the list of active rules (the first one of
 *       this event clears it). Every later request is checked against the
 *       active list, oldest definition first: the first rule whose iotype and
 *       sector match fails the request with its errno, and a {@code once}
 *       rule is then deleted. Active rules stay active until another event
 *       brings inject-error rules, so a rule on write_aio also fails the
 *       reads that follow, as in QEMU.</li>
 *   <li>set-state rules choose the state the node moves to after the event.</li>
 *   <li>suspend rules (qemu-io's {@code break}) stop the reporting request
 *       until {@link #resume}; they are deleted when hit.</li>
 * </ul>
 * QEMU completes a not-{@code immediately} injected error from a bottom half
 * rather than at once; for a blocking caller both are the same failure, so
 * {@code immediately} is accepted and has no further effect.
 *
 * <p>With {@code align}, requests reach the image in whole aligned blocks:
 * a partial block is read, patched and written whole (QEMU's block layer
 * pads for the node's alignment), and inject-error sectors are matched
 * against the padded request, as in QEMU.
 *
 * <p>One difference in timing: jblock emulates FUA (cache=writethrough) with
 * a flush after the write has counted, where QEMU's emulated flush reads the
 * node's write generation before the write counts and so skips the flush to
 * disk of the node it runs on. So a rule on flush_to_disk with iotype=flush
 * fails the first write-through write under jblock, and only the second one
 * under QEMU. Breakpoints on flush_to_disk are hit by the same writes.
 *
 * <p>Thread safety: rules and state are guarded by one lock; a suspended
 * request waits outside it.
 */
public final class BlkdebugNode extends BlockNode {
    /** The driver name. */
    public static final String DRIVER = "blkdebug";

    private final BlockNode image;
    private final Limits limits;
    private final ReentrantLock lock = new ReentrantLock();
    /** A padded (read-modify-write) request excludes other changes; aligned ones share it. */
    private final ReentrantReadWriteLock padding = new ReentrantReadWriteLock();
    /** Rules per event, in definition order. */
    private final Map<DebugEvent, List<BlkdebugRule>> rules = new EnumMap<>(DebugEvent.class);
    private final Deque<BlkdebugRule> active = new ArrayDeque<>();
    /** Suspended requests, most recent first (QEMU resumes the most recent one with a tag). */
    private final LinkedList<Suspended> suspended = new LinkedList<>();
    private long state = 1;
    private volatile Consumer<String> messages = System.out::print;

    /** The alignment and transfer limits the options asked for; 0 for "as the image". */
    record Limits(int align, int maxTransfer) {
    }

    private record Suspended(String tag, Thread thread, CountDownLatch resumed) {
    }

    BlkdebugNode(NodeSettings settings, BlockNode image, List<BlkdebugRule> initial, Limits limits) {
        super(DRIVER, settings);
        this.image = image;
        this.limits = limits;
        initial.forEach(this::addRule);
    }

    /**
     * The blkdebug node at or below {@code node}, following the primary child
     * ("file", else the first) as QEMU's bdrv_debug_breakpoint does; null when
     * there is none.
     */
    public static BlkdebugNode below(BlockNode node) {
        while (node != null && !(node instanceof BlkdebugNode)) {
            BlockNode next = node.child("file");
            if (next == null && !node.children().isEmpty()) {
                next = node.children().get(0).node();
            }
            node = next;
        }
        return (BlkdebugNode) node;
    }

    /** Where "blkdebug: Suspended request 'A'" and its resume message go (QEMU prints them on stdout). */
    public void messages(Consumer<String> sink) {
        this.messages = sink;
    }

    /** The node's state (1 when opened). */
    public long state() {
        lock.lock();
        try {
            return state;
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------ breakpoints (qemu-io)

    /** {@code break EVENT TAG}: the next request reporting {@code event} stops; ENOENT for an unknown event. */
    public void breakpoint(String event, String tag) throws BlockException {
        DebugEvent e = DebugEvent.ofOptionName(event);
        if (e == null) {
            throw new BlockException(Errno.ENOENT, Errno.ENOENT.text());
        }
        lock.lock();
        try {
            addRule(BlkdebugRule.suspend(e, tag));
        } finally {
            lock.unlock();
        }
    }

    /**
     * {@code remove_break TAG}: drops the breakpoints with this tag and resumes
     * every request stopped by one; ENOENT when no breakpoint with the tag was
     * left (even if requests were resumed, as QEMU 7.2 reports it).
     */
    public void removeBreakpoint(String tag) throws BlockException {
        boolean found = false;
        lock.lock();
        try {
            for (List<BlkdebugRule> list : rules.values()) {
                found |= list.removeIf(r -> r.action() == BlkdebugRule.Action.SUSPEND && r.tag().equals(tag));
            }
        } finally {
            lock.unlock();
        }
        while (resumeOne(tag)) {
            // QEMU 7.2 resumes them all, yet still reports ENOENT when no breakpoint was left to remove
        }
        if (!found) {
            throw new BlockException(Errno.ENOENT, Errno.ENOENT.text());
        }
    }

    /** {@code resume TAG}: lets the most recent request stopped with this tag go on; ENOENT when none is. */
    public void resume(String tag) throws BlockException {
        if (!resumeOne(tag)) {
            throw new BlockException(Errno.ENOENT, Errno.ENOENT.text());
        }
    }

    /** Whether a request is stopped with this tag. */
    public boolean isSuspended(String tag) {
        lock.lock();
        try {
            return suspended.stream().anyMatch(s -> s.tag().equals(tag));
        } finally {
            lock.unlock();
        }
    }

    /** Whether any request is stopped at a breakpoint. */
    public boolean hasSuspended() {
        lock.lock();
        try {
            return !suspended.isEmpty();
        } finally {
            lock.unlock();
        }
    }

    /** Whether {@code thread} is a request stopped at a breakpoint. */
    public boolean isSuspended(Thread thread) {
        lock.lock();
        try {
            return suspended.stream().anyMatch(s -> s.thread() == thread);
        } finally {
            lock.unlock();
        }
    }

    private boolean resumeOne(String tag) {
        Suspended found = null;
        lock.lock();
        try {
            for (Iterator<Suspended> it = suspended.iterator(); it.hasNext(); ) {
                Suspended s = it.next();
                if (s.tag().equals(tag)) {
                    it.remove();
                    found = s;
                    break;
                }
            }
        } finally {
            lock.unlock();
        }
        if (found == null) {
            return false;
        }
        messages.accept("blkdebug: Resuming request '" + tag + "'\n");
        found.resumed().countDown();
        return true;
    }

    // ------------------------------------------------------------ events

    @Override
    public void debugEvent(DebugEvent event) {
        List<BlkdebugRule> hits = new ArrayList<>();
        lock.lock();
        try {
            List<BlkdebugRule> list = rules.get(event);
            if (list == null) {
                return;
            }
            long newState = state;
            boolean injected = false;
            for (int i = list.size() - 1; i >= 0; i--) {
                BlkdebugRule r = list.get(i);
                if (r.state() != 0 && r.state() != state) {
                    continue;
                }
                switch (r.action()) {
                    case INJECT_ERROR -> {
                        if (!injected) {
                            active.clear();
                            injected = true;
                        }
                        active.addFirst(r);
                    }
                    case SET_STATE -> newState = r.newState();
                    case SUSPEND -> {
                        list.remove(i);
                        hits.add(r);
                    }
                }
            }
            state = newState;
        } finally {
            lock.unlock();
        }
        for (BlkdebugRule r : hits) {
            suspend(r.tag());
        }
    }

    private void suspend(String tag) {
        Suspended s = new Suspended(tag, Thread.currentThread(), new CountDownLatch(1));
        // Said before the request can be seen suspended: a wait_break that sees it may resume it at once, and
        // "Resuming" must not come out before "Suspended" (it did, now and then, under load).
        messages.accept("blkdebug: Suspended request '" + tag + "'\n");
        lock.lock();
        try {
            suspended.addFirst(s);
        } finally {
            lock.unlock();
        }
        boolean interrupted = false;
        while (true) {
            try {
                s.resumed().await();
                break;
            } catch (InterruptedException e) {
                interrupted = true; // a request is not cancelled by interruption (file channels would close)
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void addRule(BlkdebugRule r) {
        rules.computeIfAbsent(r.event(), e -> new ArrayList<>()).add(r);
    }

    /** Fails the request when an active rule matches it (QEMU's rule_check). */
    private void check(BlkdebugIoType type, long offset, long bytes) throws BlockException {
        BlkdebugRule hit = null;
        lock.lock();
        try {
            for (BlkdebugRule r : active) {
                if (r.matches(type, offset, bytes)) {
                    hit = r;
                    break;
                }
            }
            if (hit == null || hit.errno() == 0) {
                return;
            }
            if (hit.once()) {
                active.remove(hit);
                List<BlkdebugRule> list = rules.get(hit.event());
                if (list != null) {
                    list.remove(hit);
                }
            }
        } finally {
            lock.unlock();
        }
        Errno errno = Errno.of(hit.errno());
        throw new BlockException(errno, errno.text());
    }

    // ------------------------------------------------------------ node

    @Override
    public List<BlockChild> children() {
        return List.of(new BlockChild("image", image));
    }

    @Override
    public Capabilities capabilities() {
        Capabilities c = image.capabilities();
        int align = Math.max(c.requestAlignment(), limits.align());
        int max = limits.maxTransfer() > 0 ? Math.min(limits.maxTransfer(), c.maxTransfer()) : c.maxTransfer();
        return new Capabilities(c.nativeFua(), c.fastZero(), c.discard(), align, Math.max(max, align));
    }

    @Override
    public long length() throws BlockException {
        return image.length();
    }

    /**
     * Unknown, as in QEMU 7.2: blkdebug opens at the protocol level and has no
     * allocated-size callback, so {@code qemu-img info} says "disk size: unavailable".
     */
    @Override
    public long allocatedSize() {
        return -1;
    }

    @Override
    public NodeInfo info() {
        return NodeInfo.simple(DRIVER);
    }

    @Override
    protected void doRead(long offset, ByteBuffer dst) throws BlockException {
        long start = alignDown(offset);
        long end = alignUp(offset + dst.remaining());
        check(BlkdebugIoType.READ, start, end - start);
        if (start == offset && end == offset + dst.remaining()) {
            image.read(offset, dst);
            return;
        }
        ByteBuffer whole = ByteBuffer.allocate((int) (end - start));
        image.read(start, whole);
        whole.position((int) (offset - start)).limit((int) (offset - start) + dst.remaining());
        dst.put(whole);
    }

    @Override
    protected void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        long start = alignDown(offset);
        long end = alignUp(offset + src.remaining());
        check(BlkdebugIoType.WRITE, start, end - start);
        if (start == offset && end == offset + src.remaining()) {
            padding.readLock().lock();
            try {
                image.write(offset, src, flags);
            } finally {
                padding.readLock().unlock();
            }
            return;
        }
        padding.writeLock().lock();
        try {
            ByteBuffer whole = ByteBuffer.allocate((int) (end - start));
            image.read(start, whole);
            whole.position((int) (offset - start));
            whole.put(src.duplicate());
            whole.clear();
            image.write(start, whole, flags);
            src.position(src.limit());
        } finally {
            padding.writeLock().unlock();
        }
    }

    @Override
    protected void doWriteZeroes(long offset, long length, int flags) throws BlockException {
        if (alignDown(offset) != offset || alignDown(offset + length) != offset + length) {
            // A partial block becomes a padded write of zeroes, as QEMU's block layer pads for alignment.
            doWrite(offset, ByteBuffer.allocate(Math.toIntExact(length)), flags & WriteFlags.FUA);
            return;
        }
        check(BlkdebugIoType.WRITE_ZEROES, offset, length);
        padding.readLock().lock();
        try {
            image.writeZeroes(offset, length, flags);
        } finally {
            padding.readLock().unlock();
        }
    }

    /** Discard is advisory: only its whole aligned blocks are passed on. */
    @Override
    protected void doDiscard(long offset, long length) throws BlockException {
        long start = alignUp(offset);
        long end = alignDown(offset + length);
        if (end <= start) {
            return;
        }
        check(BlkdebugIoType.DISCARD, start, end - start);
        padding.readLock().lock();
        try {
            image.discard(start, end - start);
        } finally {
            padding.readLock().unlock();
        }
    }

    /** The alignment requests reach the image with: {@code align}, or the image's own. */
    private long alignment() {
        return Math.max(limits.align(), 1);
    }

    private long alignDown(long n) {
        return n - Math.floorMod(n, alignment());
    }

    private long alignUp(long n) {
        long a = alignment();
        return (n + a - 1) / a * a;
    }

    @Override
    public void flushToDisk() throws BlockException {
        check(BlkdebugIoType.FLUSH, 0, 0);
    }

    @Override
    protected BlockStatus doBlockStatus(long offset, long length) throws BlockException {
        check(BlkdebugIoType.BLOCK_STATUS, offset, length);
        return image.blockStatus(offset, length);
    }

    @Override
    protected void doTruncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        image.truncate(length, exact, prealloc);
    }

    /** Drops every breakpoint and lets every stopped request go on (before a close, which flushes). */
    public void clearBreakpoints() {
        lock.lock();
        try {
            for (List<BlkdebugRule> list : rules.values()) {
                list.removeIf(r -> r.action() == BlkdebugRule.Action.SUSPEND);
            }
        } finally {
            lock.unlock();
        }
        resumeAll();
    }

    private void resumeAll() {
        List<Suspended> left;
        lock.lock();
        try {
            left = new ArrayList<>(suspended);
            suspended.clear();
        } finally {
            lock.unlock();
        }
        left.forEach(s -> s.resumed().countDown());
    }

    /** Lets every stopped request go on, so none is left waiting on a node that is gone, then closes. */
    @Override
    public void close() throws BlockException {
        resumeAll();
        super.close();
    }
}
