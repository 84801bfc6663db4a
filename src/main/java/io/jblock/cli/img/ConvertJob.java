package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The copy of {@code img convert}: the sources, one after the other, onto
 * the target, in qemu-img 7.2's units (512-byte sectors) and with its
 * decisions, so the target ends up allocated exactly where qemu-img's
 * would be.
 *
 * <h2>How a run is copied</h2>
 * Block status splits the sources into runs of data, zeroes, and (when the
 * target has a backing file) bytes to leave to that file. Data is read at
 * most {@code bufSectors} at a time and, unless sparse detection is off
 * ({@code -S 0}), scanned for zeroes: runs of at least {@code minSparse}
 * zero sectors, cut at {@code alignment}, are not written but zeroed (or
 * skipped, on a target known to read as zero). Zero runs are zeroed with
 * MAY_UNMAP, or skipped on such a target.
 *
 * <h2>Parallelism</h2>
 * {@code workers} threads (qemu-img's coroutines, -m) take the next
 * chunk in turn, read it, and write it; with in-order writes (the default;
 * -W turns it off) each waits until the chunk before it was written; a
 * chunk that writes nothing (a hole on a target that reads as zero, bytes
 * left to the target's backing file) has no write to order and does not
 * wait. The chunks, and so the target's contents and allocation, are the
 * same in any case: only the order of the writes changes.
 */
final class ConvertJob {
    static final int SECTOR = 512;
    private static final int PAGE = 4096;
    /** qemu-img's BDRV_REQUEST_MAX_SECTORS: the longest run one block-status call asks about. */
    private static final long MAX_REQUEST_SECTORS = Integer.MAX_VALUE >> 9;

    /** What a chunk is, for the target. */
    enum Kind { DATA, ZERO, BACKING_FILE }

    /**
     * The job's settings.
     *
     * @param minSparse            zero sectors in a row that make a hole; 0 turns detection off
     * @param hasZeroInit          the target reads as zero already: zero runs are skipped
     * @param targetHasBacking     unallocated runs of the top source are left to the target's backing file
     * @param targetBackingSectors the length of that backing file, -1 when unknown
     * @param inOrder              writes in the order of the chunks
     * @param workers              chunks copied at once (-m)
     * @param copyRange            -C: data is copied as read, zeroes included
     * @param salvage              read errors become zeroes with a warning
     * @param quiet                no warnings
     * @param alignment            sectors at which zero detection cuts runs (a power of two)
     * @param bufSectors           the largest data chunk
     * @param rateLimit            bytes per second written at most, 0 for no limit
     * @param clusterSectors       -c: the target's cluster in sectors (data goes out compressed, in whole
     *                             clusters); 0 without -c
     */
    record Settings(int minSparse, boolean hasZeroInit, boolean targetHasBacking, long targetBackingSectors,
                    boolean inOrder, int workers, boolean copyRange, boolean salvage, boolean quiet,
                    int alignment, int bufSectors, long rateLimit, int clusterSectors) {
        Settings(int minSparse, boolean hasZeroInit, boolean targetHasBacking, long targetBackingSectors,
                 boolean inOrder, int workers, boolean copyRange, boolean salvage, boolean quiet,
                 int alignment, int bufSectors, long rateLimit) {
            this(minSparse, hasZeroInit, targetHasBacking, targetBackingSectors, inOrder, workers, copyRange,
                    salvage, quiet, alignment, bufSectors, rateLimit, 0);
        }

        boolean compressed() {
            return clusterSectors > 0;
        }
    }

    /** The copy failed; the message is printed already. */
    static final class Failed extends Exception {
        Failed() {
            super(null, null, false, false);
        }
    }

    private final ImgContext ctx;
    private final List<BlockNode> sources;
    private final long[] sourceSectors;
    /** The sources' lengths in bytes, asked once (a file's length is an fstat each time). */
    private final long[] sourceBytes;
    private final long totalSectors;
    private final BlockNode target;
    private final Settings s;
    private final Progress progress;
    private final RateLimit rate;

    // The cursor, shared by the workers under {@link #lock}: QEMU's ImgConvertState.
    private final ReentrantLock lock = new ReentrantLock();
    /**
     * In-order writes: the worker waiting for its turn at a start sector, by
     * that sector. A finished chunk wakes only the worker whose turn is next
     * (waking them all cost ~20 futex calls per chunk with 8 workers).
     */
    private final java.util.Map<Long, Condition> turns = new java.util.HashMap<>();
    /**
     * In-order writes: runs of chunks after {@link #writtenUpTo} that write
     * nothing and are done, start to end. Chunks are handed out in sector
     * order, so a new one is merged into the last run when it follows it:
     * at most one run per chunk in flight, however many such chunks there are.
     */
    private final java.util.TreeMap<Long, Long> skippedAhead = new java.util.TreeMap<>();
    private long sectorNum;
    private long nextStatusSector;
    private Kind status;
    private long writtenUpTo;
    private boolean failed;
    private long allocatedSectors;
    private long allocatedDone;
    /**
     * -C, while it works: QEMU's copy offloading fails on the first chunk it
     * cannot offload (compressed clusters: data without a host offset) and
     * is off from then on, so that chunk and the rest are copied with zero
     * detection.
     */
    private boolean copyRange; // guarded by lock

    /** Bytes written between two {@link BlockNode#startWriteback} hints; 0 for none. */
    private long writebackStep;
    /** Bytes written since the last hint. */
    private final AtomicLong sinceWriteback = new AtomicLong();

    ConvertJob(ImgContext ctx, List<BlockNode> sources, BlockNode target, Settings settings, Progress progress)
            throws BlockException {
        this.ctx = ctx;
        this.sources = sources;
        this.sourceSectors = new long[sources.size()];
        this.sourceBytes = new long[sources.size()];
        long total = 0;
        for (int i = 0; i < sources.size(); i++) {
            sourceBytes[i] = sources.get(i).length();
            sourceSectors[i] = SectorImage.roundUp(sourceBytes[i]) / SECTOR;
            total += sourceSectors[i];
        }
        this.totalSectors = total;
        this.target = target;
        this.s = settings;
        this.progress = progress;
        this.rate = new RateLimit(settings.rateLimit());
        this.copyRange = settings.copyRange();
    }

    long totalSectors() {
        return totalSectors;
    }

    /** Copies everything; on failure the message is printed and {@link Failed} thrown. */
    void run() throws Failed {
        // First pass: what will be written, for the progress figure (qemu-img always makes it). Without -p
        // nothing reads that figure, and the pass is a block-status call per extent of the whole source,
        // made before any copying starts; with --salvage it stays, since it prints its own warnings.
        if (progress.enabled() || s.salvage()) {
            long at = 0;
            while (at < totalSectors) {
                long n = nextChunk(at);
                if (status == Kind.DATA || (s.minSparse() == 0 && status == Kind.ZERO)) {
                    allocatedSectors += n;
                }
                at += n;
            }
        }
        nextStatusSector = 0;
        sectorNum = 0;
        writtenUpTo = 0;
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < s.workers(); i++) {
            // Platform threads, not virtual ones: at most 16 workers, each blocked in a file read or write
            // most of the time, and with the threads engine a virtual thread blocked in FileChannel I/O
            // pins its carrier and makes the pool start another; measured 1.9 s against 0.9 s for a
            // 512 MiB raw-to-raw convert on this machine.
            threads.add(Thread.ofPlatform().name("convert-" + i).start(this::workSafely));
        }
        for (Thread t : threads) {
            boolean interrupted = false;
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        if (failed) {
            throw new Failed();
        }
    }

    /**
     * A worker that dies of an unexpected exception must not leave the
     * others waiting for its turn forever: it fails the job and wakes them.
     */
    private void workSafely() {
        try {
            work();
        } catch (RuntimeException | Error e) {
            ctx.error("error while converting: " + e);
            lock.lock();
            try {
                failed = true;
                wakeAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** One worker: QEMU's convert_co_do_copy. */
    private void work() {
        ByteBuffer buf = pageAligned(s.bufSectors() * SECTOR);
        Condition turn = lock.newCondition();
        while (true) {
            long start;
            long n;
            Kind kind;
            boolean offload;
            lock.lock();
            try {
                if (failed || sectorNum >= totalSectors) {
                    return;
                }
                try {
                    n = nextChunk(sectorNum);
                } catch (Failed e) {
                    failed = true;
                    wakeAll();
                    return;
                }
                start = sectorNum;
                kind = status;
                if (s.minSparse() == 0 && kind == Kind.ZERO) {
                    n = Math.min(n, s.bufSectors());
                }
                sectorNum += n;
                if (kind == Kind.DATA || (s.minSparse() == 0 && kind == Kind.ZERO)) {
                    allocatedDone += n;
                    progress.print((float) (100.0 * allocatedDone / allocatedSectors), 0);
                }
                // -C gives up at the first chunk, in sector order, that cannot be offloaded, and every later
                // chunk is written normally, as QEMU's in-order coroutines decide it. Decided here, under the
                // lock that hands out chunks: decided by each worker afterwards, a worker that had read the flag
                // before another turned it off still offloaded a later chunk (zeroes written as data), so the
                // target's allocation depended on timing.
                offload = copyRange && kind == Kind.DATA;
                if (offload && !offloadable(start, n)) {
                    copyRange = false;
                    offload = false;
                }
                if (writesNothing(kind)) {
                    // No I/O, so nothing to order: done at once instead of waiting for its turn, and the
                    // worker goes on to the next chunk. In a half-full image every other chunk is one of these,
                    // and each turn taken was a sleep and a wake-up on the path of every write after it.
                    skipped(start, start + n);
                    continue;
                }
            } finally {
                lock.unlock();
            }
            boolean ok = true;
            if (kind == Kind.DATA) {
                ok = read(start, (int) n, buf);
            } else if (s.minSparse() == 0 && kind == Kind.ZERO) {
                kind = Kind.DATA;
                buf.clear().limit((int) n * SECTOR);
                ZeroScan.fill(buf);
            }
            if (s.inOrder() && !awaitTurn(start, turn)) {
                return;
            }
            if (ok && !isFailed()) {
                ok = write(start, n, buf, kind, offload);
            }
            lock.lock();
            try {
                if (!ok) {
                    failed = true;
                }
                writtenUpTo = Math.max(writtenUpTo, start + n);
                passSkipped();
                if (failed) {
                    wakeAll();
                } else {
                    Condition next = turns.get(writtenUpTo);
                    if (next != null) {
                        next.signal();
                    }
                }
            } finally {
                lock.unlock();
            }
            if (!ok) {
                return;
            }
        }
    }

    /**
     * A buffer that starts on a page. The kernel copies whole page-cache
     * pages into it and out of it; allocateDirect's own memory starts 16
     * bytes into a page (malloc's header), and on the AMD EPYC this was
     * measured on a copy to that offset runs 3x slower: reading 512 MiB of
     * cached data with 1 MiB preads took 0.38 s of system time against
     * 0.10-0.14 s into a page-aligned buffer (QEMU's buffers are aligned
     * too: blk_blockalign).
     */
    static ByteBuffer pageAligned(int bytes) {
        // alignedSlice rounds the end down to a page as well: room for whole pages plus one, so any size fits.
        long room = ((bytes + (long) PAGE - 1) / PAGE + 1) * PAGE;
        if (room > Integer.MAX_VALUE) {
            return ByteBuffer.allocateDirect(bytes); // within two pages of 2 GiB (dd's bs): unaligned, still right
        }
        return ByteBuffer.allocateDirect((int) room).alignedSlice(PAGE).limit(bytes).slice();
    }

    /** Whether a chunk of this kind leaves the target as it is (so its place in the write order is moot). */
    private boolean writesNothing(Kind kind) {
        return kind == Kind.BACKING_FILE || (kind == Kind.ZERO && s.minSparse() != 0 && s.hasZeroInit());
    }

    /** A chunk that writes nothing is done. Under {@link #lock}. */
    private void skipped(long start, long end) {
        if (!s.inOrder()) {
            return;
        }
        if (writtenUpTo == start) {
            writtenUpTo = end;
            passSkipped();
            Condition next = turns.get(writtenUpTo);
            if (next != null) {
                next.signal();
            }
        } else {
            java.util.Map.Entry<Long, Long> last = skippedAhead.lastEntry();
            skippedAhead.put(last != null && last.getValue() == start ? last.getKey() : start, end);
        }
    }

    /** Moves {@link #writtenUpTo} past the chunks that wrote nothing and start where it stands. Under the lock. */
    private void passSkipped() {
        Long end;
        while ((end = skippedAhead.remove(writtenUpTo)) != null) {
            writtenUpTo = end;
        }
    }

    private boolean isFailed() {
        lock.lock();
        try {
            return failed;
        } finally {
            lock.unlock();
        }
    }

    /** Waits until every chunk before {@code start} was written; false when the job failed meanwhile. */
    private boolean awaitTurn(long start, Condition turn) {
        lock.lock();
        try {
            if (writtenUpTo != start && !failed) {
                turns.put(start, turn);
                try {
                    while (writtenUpTo != start && !failed) {
                        turn.awaitUninterruptibly();
                    }
                } finally {
                    turns.remove(start);
                }
            }
            return !failed;
        } finally {
            lock.unlock();
        }
    }

    /** The job failed: every worker waiting for its turn wakes up (and stops). Under {@link #lock}. */
    private void wakeAll() {
        for (Condition c : turns.values()) {
            c.signal();
        }
    }

    // ---------------------------------------------------------------- chunks

    /** Which source holds {@code sector}, and where that source starts. */
    private record Part(int index, long startSector) {
    }

    private Part part(long sector) {
        long first = 0;
        int i = 0;
        while (sector - first >= sourceSectors[i]) {
            first += sourceSectors[i];
            i++;
        }
        return new Part(i, first);
    }

    /**
     * The length in sectors of the chunk at {@code sector}, setting
     * {@link #status}: QEMU's convert_iteration_sectors, one block-status
     * call per run, kept until the cursor passes it.
     */
    private long nextChunk(long sector) throws Failed {
        Part p = part(sector);
        long n = Math.min(totalSectors - sector, MAX_REQUEST_SECTORS);
        boolean postBackingZero = false;
        if (s.targetBackingSectors() >= 0) {
            if (sector >= s.targetBackingSectors()) {
                postBackingZero = true;
            } else if (sector + n > s.targetBackingSectors()) {
                // Zeroes past the backing file's end are handled differently: split there.
                n = s.targetBackingSectors() - sector;
            }
        }
        if (nextStatusSector <= sector) {
            BlockNode src = sources.get(p.index());
            long inSource = sector - p.startSector();
            long offset = inSource * SECTOR;
            long bytes = Math.min(n, sourceSectors[p.index()] - inSource) * SECTOR;
            BlockStatus st;
            try {
                st = SectorImage.status(src, offset, bytes);
            } catch (BlockException e) {
                if (!s.salvage()) {
                    ctx.error("error while reading block status at offset " + offset + ": " + e.errno().text());
                    throw new Failed();
                }
                if (!s.quiet()) {
                    ctx.warn("error while reading block status at offset " + offset + ": " + e.errno().text());
                }
                // Just try to read the data, then, one sector at a time.
                st = new BlockStatus(SECTOR, BlockStatus.DATA | BlockStatus.ALLOCATED, 1);
            }
            n = (st.length() + SECTOR - 1) / SECTOR;
            if (s.targetHasBacking() && st.depth() != 1 && backingCovers(src, offset)) {
                // Unallocated in the top source: the target's backing file shows through.
                status = Kind.BACKING_FILE;
            } else if (st.isZero()) {
                status = postBackingZero ? Kind.BACKING_FILE : Kind.ZERO;
            } else {
                status = Kind.DATA;
            }
            nextStatusSector = sector + n;
        }
        n = Math.min(n, nextStatusSector - sector);
        if (status == Kind.DATA) {
            n = Math.min(n, s.bufSectors());
        }
        if (s.compressed()) {
            // Compressed writes take whole clusters: a shorter run is read (and written) as a whole cluster.
            if (n < s.clusterSectors()) {
                n = Math.min(s.clusterSectors(), totalSectors - sector);
                status = Kind.DATA;
            } else {
                n -= n % s.clusterSectors();
            }
        }
        return n;
    }

    /** Whether the source's own backing file has the bytes at {@code offset} (else they read as zero). */
    private static boolean backingCovers(BlockNode src, long offset) throws Failed {
        BlockNode backing = src.child("backing");
        try {
            return backing != null && offset < backing.length();
        } catch (BlockException e) {
            return false;
        }
    }

    /** Whether every byte of the chunk sits at a known place in a file (what copy offloading needs). */
    private boolean offloadable(long sector, long n) {
        long at = sector;
        long end = sector + n;
        try {
            while (at < end) {
                Part p = part(at);
                BlockNode src = sources.get(p.index());
                long inSource = at - p.startSector();
                long count = Math.min(end - at, sourceSectors[p.index()] - inSource);
                long offset = inSource * SECTOR;
                long stop = offset + count * SECTOR;
                while (offset < stop) {
                    BlockStatus st = SectorImage.status(src, offset, stop - offset);
                    if (st.isData() && !st.hasHostOffset()) {
                        return false;
                    }
                    offset += st.length();
                }
                at += count;
            }
            return true;
        } catch (BlockException e) {
            return false;
        }
    }

    // ---------------------------------------------------------------- I/O

    /** Reads {@code n} sectors of the concatenated sources; false (message printed) on failure. */
    private boolean read(long sector, int n, ByteBuffer buf) {
        buf.clear().limit(n * SECTOR);
        long singleReadsUntil = 0;
        long at = sector;
        int left = n;
        while (left > 0) {
            Part p = part(at);
            BlockNode src = sources.get(p.index());
            long offset = (at - p.startSector()) * SECTOR;
            int count = (int) Math.min(left, sourceSectors[p.index()] - (at - p.startSector()));
            if (singleReadsUntil > offset) {
                count = 1;
            }
            ByteBuffer dst = buf.slice((int) (at - sector) * SECTOR, count * SECTOR);
            try {
                readPadded(src, sourceBytes[p.index()], offset, dst);
            } catch (BlockException e) {
                if (!s.salvage()) {
                    ctx.error("error while reading at byte " + sector * SECTOR + ": " + e.errno().text());
                    return false;
                }
                if (count > 1) {
                    singleReadsUntil = offset + (long) count * SECTOR;
                    continue;
                }
                if (!s.quiet()) {
                    ctx.warn("error while reading offset " + offset + ": " + e.errno().text());
                }
                ZeroScan.fill(dst.clear());
            }
            at += count;
            left -= count;
        }
        buf.position(0).limit(n * SECTOR);
        return true;
    }

    /** Reads up to the node's true end, and zeroes for the rest of its last sector. */
    private static void readPadded(BlockNode src, long length, long offset, ByteBuffer dst) throws BlockException {
        int real = (int) Math.max(0, Math.min(dst.remaining(), length - offset));
        if (real > 0) {
            src.read(offset, dst.slice(0, real));
        }
        if (real < dst.remaining()) {
            ZeroScan.fill(dst.slice(real, dst.remaining() - real));
        }
    }

    /** Writes one chunk as qemu-img's convert_co_write does; false (message printed) on failure. */
    private boolean write(long sector, long sectors, ByteBuffer buf, Kind kind, boolean offload) {
        long at = sector;
        long left = sectors;
        int bufPos = 0;
        try {
            while (left > 0) {
                long n = left;
                switch (kind) {
                    case BACKING_FILE -> {
                        // Left unallocated, so the target's backing file shows through.
                    }
                    case DATA -> {
                        boolean write = s.minSparse() == 0 || offload;
                        if (s.compressed()) {
                            // A compressed cluster is written whole, or not at all when it is all zeroes.
                            write = write || !ZeroScan.isZero(buf.slice(bufPos * SECTOR, (int) n * SECTOR));
                        } else if (!write) {
                            ZeroScan.Run r = ZeroScan.allocatedMin(buf, bufPos, (int) n, s.minSparse(), at,
                                    s.alignment());
                            n = r.sectors();
                            write = r.allocated();
                        }
                        if (write) {
                            rate.take(n * SECTOR);
                            target.write(at * SECTOR, buf.slice(bufPos * SECTOR, (int) n * SECTOR),
                                    s.compressed() ? WriteFlags.COMPRESSED : WriteFlags.NONE);
                            wrote(n * SECTOR);
                        } else {
                            zero(at, n);
                        }
                    }
                    case ZERO -> zero(at, n);
                }
                at += n;
                left -= n;
                bufPos += (int) n;
            }
            return true;
        } catch (BlockException e) {
            ctx.error("error while writing at byte " + sector * SECTOR + ": " + e.errno().text());
            return false;
        }
    }

    /**
     * When the copy will end with a real flush (the default cache), asks the
     * OS every {@code step} bytes written to start writing the target back:
     * otherwise the whole image waits in the page cache for that one
     * fdatasync, which then takes as long as writing it all (0.44 s of a
     * 1 GiB convert's 2.5 s, measured; with the hint the convert took 1.6 s).
     * It changes nothing about what is durable when.
     */
    void startWritebackEvery(long step) {
        this.writebackStep = step;
    }

    private void wrote(long bytes) {
        if (writebackStep > 0 && sinceWriteback.addAndGet(bytes) >= writebackStep) {
            sinceWriteback.set(0);
            target.startWriteback();
        }
    }

    private void zero(long sector, long n) throws BlockException {
        if (s.hasZeroInit()) {
            return;
        }
        target.writeZeroes(sector * SECTOR, n * SECTOR, WriteFlags.MAY_UNMAP);
    }
}
