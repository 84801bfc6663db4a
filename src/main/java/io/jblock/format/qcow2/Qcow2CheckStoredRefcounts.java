package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * The reference counts as the image stores them, read (and, when repairing,
 * written) the way QEMU's qcow2_get_refcount and update_refcount reach them:
 * through the refcount table held in memory, one refcount block at a time.
 *
 * <pre>
 *   refcount table entry: 63..9 refcount block offset | 8..0 reserved
 * </pre>
 *
 * A cluster past the table, or under a table entry of 0, has count 0. A block
 * offset that is not cluster aligned makes the count unreadable (QEMU
 * signals the image as corrupt once, then answers EIO). A block past the end
 * of the file reads as zeroes, as the file protocol reads there.
 */
final class Qcow2CheckStoredRefcounts {
    static final long OFFSET_MASK = 0xfffffffffffffe00L;
    static final long RESERVED_MASK = 0x1ffL;

    /** A count that cannot be read; the check reports it and goes on. */
    static final class Unreadable extends Exception {
        final Errno errno;

        Unreadable(Errno errno) {
            super(errno.text(), null, false, false);
            this.errno = errno;
        }
    }

    private final BlockNode file;
    private final int clusterBits;
    private final int order;
    private final int entriesPerBlockBits;
    private final Consumer<String> report;
    private final boolean writable;
    private long[] table;
    private boolean corruptionSignalled;
    private boolean fatalSignalled;
    private long cachedOffset = -1;
    private byte[] cached;

    Qcow2CheckStoredRefcounts(BlockNode file, int clusterBits, int refcountOrder, long[] table, boolean writable,
                              Consumer<String> report) {
        this.file = file;
        this.clusterBits = clusterBits;
        this.order = refcountOrder;
        this.entriesPerBlockBits = clusterBits + 3 - refcountOrder;
        this.table = table;
        this.writable = writable;
        this.report = report;
    }

    /** Reads {@code entries} refcount table entries at {@code offset}. */
    static long[] readTable(BlockNode file, long offset, long entries) throws BlockException {
        long[] t = new long[(int) entries];
        ByteBuffer b = ByteBuffer.allocate((int) entries * 8);
        if (entries > 0) {
            file.read(offset, b);
        }
        b.flip().asLongBuffer().get(t);
        return t;
    }

    long[] table() {
        return table;
    }

    /** After a rebuild: the new table, and nothing cached from the old blocks. */
    void replaceTable(long[] newTable) {
        table = newTable;
        cachedOffset = -1;
        cached = null;
    }

    int entriesPerBlockBits() {
        return entriesPerBlockBits;
    }

    /** Whether refcount block {@code index} is certainly absent (so all its counts are 0). */
    boolean blockAbsent(long index) {
        return index >= table.length || (table[(int) index] & OFFSET_MASK) == 0;
    }

    long get(long cluster) throws Unreadable, BlockException {
        long index = cluster >>> entriesPerBlockBits;
        if (index >= table.length) {
            return 0;
        }
        long block = table[(int) index] & OFFSET_MASK;
        if (block == 0) {
            return 0;
        }
        byte[] b = block(index, block);
        return Qcow2CheckCounts.decode(b, cluster & ((1L << entriesPerBlockBits) - 1), order);
    }

    /** Where the refcount block of {@code cluster} is (0 when it has none). */
    long blockOffset(long cluster) {
        long index = cluster >>> entriesPerBlockBits;
        return index < table.length ? table[(int) index] & OFFSET_MASK : 0;
    }

    /** Sets the stored count of {@code cluster}, whose refcount block exists (QEMU's update_refcount). */
    void set(long cluster, long value) throws Unreadable, BlockException {
        long index = cluster >>> entriesPerBlockBits;
        long block = index < table.length ? table[(int) index] & OFFSET_MASK : 0;
        if (block == 0) {
            throw new Unreadable(Errno.EINVAL);
        }
        byte[] b = block(index, block);
        long entry = cluster & ((1L << entriesPerBlockBits) - 1);
        Qcow2CheckCounts.encode(b, entry, order, value);
        int bytes = Math.max(1, (1 << order) / 8);
        int at = (int) (entry * (1 << order) / 8);
        file.write(block + at, ByteBuffer.wrap(b, at, bytes), WriteFlags.NONE);
    }

    private byte[] block(long index, long block) throws Unreadable, BlockException {
        if ((block & ((1L << clusterBits) - 1)) != 0) {
            signalCorruption("Refblock offset " + Qcow2Check.hashHex(block) + " unaligned (reftable index: "
                    + Qcow2Check.hashHex(index) + ")");
            throw new Unreadable(Errno.EIO);
        }
        if (block != cachedOffset) {
            ByteBuffer b = ByteBuffer.allocate(1 << clusterBits);
            file.read(block, b);
            cached = b.array();
            cachedOffset = block;
        }
        return cached;
    }

    /**
     * QEMU's qcow2_signal_corruption for an unreadable count: read-only it
     * only reports; opened for repair QEMU also marks the image corrupt and
     * stops using it (so its rebuild then fails). jblock says the same words
     * but carries on, so that "-r all" can rebuild the refcount structure.
     */
    private void signalCorruption(String what) {
        signal(what, writable);
    }

    /**
     * Says a corruption once, as QEMU does: after the first, only a fatal
     * one on an image not yet marked corrupt is said again. Returns whether
     * it was said.
     */
    boolean signal(String what, boolean fatal) {
        if (corruptionSignalled && (!fatal || fatalSignalled)) {
            return false;
        }
        corruptionSignalled = true;
        fatalSignalled |= fatal;
        report.accept(fatal
                ? "qcow2: Marking image as corrupt: " + what + "; further corruption events will be suppressed"
                : "qcow2: Image is corrupt: " + what + "; further non-fatal corruption events will be suppressed");
        return true;
    }
}
