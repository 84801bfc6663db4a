package io.jblock.block;

import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of one drive. Flushes are counted twice over on purpose: how many
 * the client asked for, and how many reached the disk (fdatasync calls below
 * the drive), because the cache mode decides the gap between the two.
 */
public final class DriveStats {
    final LongAdder reads = new LongAdder();
    final LongAdder readBytes = new LongAdder();
    final LongAdder writes = new LongAdder();
    final LongAdder writeBytes = new LongAdder();
    final LongAdder zeroWrites = new LongAdder();
    final LongAdder discards = new LongAdder();
    final LongAdder flushRequests = new LongAdder();
    final LongAdder errors = new LongAdder();
    private final BlockNode root;

    DriveStats(BlockNode root) {
        this.root = root;
    }

    public long reads() {
        return reads.sum();
    }

    public long readBytes() {
        return readBytes.sum();
    }

    public long writes() {
        return writes.sum();
    }

    public long writeBytes() {
        return writeBytes.sum();
    }

    public long zeroWrites() {
        return zeroWrites.sum();
    }

    public long discards() {
        return discards.sum();
    }

    /** Flush requests made to the drive, acknowledged in every cache mode. */
    public long flushRequests() {
        return flushRequests.sum();
    }

    /** Flushes that reached a disk: the fdatasync calls made by every node below the drive. */
    public long diskFlushes() {
        return root.diskFlushCount();
    }

    /** Requests that failed. */
    public long errors() {
        return errors.sum();
    }

    @Override
    public String toString() {
        return "reads=" + reads() + " readBytes=" + readBytes() + " writes=" + writes() + " writeBytes="
                + writeBytes() + " zeroWrites=" + zeroWrites() + " discards=" + discards() + " flushRequests="
                + flushRequests() + " diskFlushes=" + diskFlushes() + " errors=" + errors();
    }
}
