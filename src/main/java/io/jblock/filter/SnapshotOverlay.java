package io.jblock.filter;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Capabilities;
import io.jblock.block.DiscardMode;
import io.jblock.block.Errno;
import io.jblock.block.NodeInfo;
import io.jblock.block.NodeSettings;
import io.jblock.block.WriteFlags;
import io.jblock.engine.EngineFile;
import io.jblock.engine.IoEngine;
import io.jblock.protocol.FileNode;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * {@code snapshot=on} (qemu-io {@code -s}, qemu-nbd {@code -s}): every write
 * lands in a temporary overlay, reads come from the overlay where it has the
 * data and from the image elsewhere, and everything written is dropped at
 * close. The image is never written: it must be opened read-only, and this
 * node refuses one that is not.
 *
 * <pre>
 *   SnapshotOverlay ──file────▶ temporary sparse file (cache=unsafe: never fdatasync'd)
 *                   └─backing─▶ the image (read-only)
 * </pre>
 *
 * <p>This is the shape of QEMU's own snapshot mode, a temporary qcow2 whose
 * backing file is the image, so the roles mean the same here: "backing" is
 * the read-only image the overlay falls through to (block status reports its
 * data at depth 2, as for a backing file), "file" is where the overlay keeps
 * its data. When jblock has qcow2, snapshot mode can become exactly QEMU's
 * graph without any user-visible change.
 *
 * <p>The overlay's data is kept in a temporary sparse file rather than in
 * memory, because a snapshot session may write as much as the disk holds;
 * the file is created in {@code $TMPDIR} or else {@code /var/tmp} (QEMU's
 * choice, since {@code /tmp} is often memory-backed), and deleted as soon as
 * it is open, so nothing is left behind even if the process dies. It is
 * written with no-flush (QEMU opens its temporary overlay with cache=unsafe):
 * the data is worthless after close, so paying for durability makes no sense.
 *
 * <p>Allocation is tracked in a bitmap of {@value #CHUNK_SIZE}-byte chunks
 * (qcow2's default cluster size). The first write to a chunk copies the parts
 * of the chunk it does not cover from the image (copy-on-write), then marks
 * the chunk; writes to the same unallocated chunk are serialised by a lock so
 * two copy-on-writes never race, while other chunks proceed in parallel. A
 * chunk is marked only after its data is in the overlay, so a reader that
 * sees the mark also sees the data.
 */
public final class SnapshotOverlay extends BlockNode {
    /** The driver name this node reports. */
    public static final String DRIVER = "snapshot-overlay";
    private static final int CHUNK_SHIFT = 16;
    /** Allocation granularity, in bytes. */
    public static final int CHUNK_SIZE = 1 << CHUNK_SHIFT;
    private static final int LOCK_STRIPES = 64;

    private final BlockNode image;
    private final BlockNode store;
    private final long length;
    private final AtomicLongArray allocated;
    private final ReentrantLock[] locks = new ReentrantLock[LOCK_STRIPES];

    private SnapshotOverlay(NodeSettings settings, BlockNode image, BlockNode store, long length) {
        super(DRIVER, settings);
        this.image = image;
        this.store = store;
        this.length = length;
        long chunks = (length + CHUNK_SIZE - 1) >>> CHUNK_SHIFT;
        this.allocated = new AtomicLongArray((int) ((chunks + 63) >>> 6));
        for (int i = 0; i < LOCK_STRIPES; i++) {
            locks[i] = new ReentrantLock();
        }
    }

    /**
     * Puts an overlay on {@code image}, keeping its data in a new temporary
     * file in {@link #temporaryDirectory()}. On failure the image is left open
     * for the caller to close.
     *
     * @param image    the image, opened read-only
     * @param settings the overlay's own settings (its read-only is the drive's; no-flush is forced on)
     * @param engine   how the temporary file does its I/O
     */
    public static SnapshotOverlay open(BlockNode image, NodeSettings settings, IoEngine engine)
            throws BlockException {
        return open(image, settings, engine, temporaryDirectory());
    }

    /** As {@link #open(BlockNode, NodeSettings, IoEngine)}, with the temporary file in {@code dir}. */
    public static SnapshotOverlay open(BlockNode image, NodeSettings settings, IoEngine engine, Path dir)
            throws BlockException {
        if (!image.isReadOnly()) {
            throw new BlockException(Errno.EINVAL, "the image under a snapshot overlay must be read-only");
        }
        long length = image.length();
        Path path;
        try {
            path = Files.createTempFile(dir, "vl.", "");
        } catch (IOException e) {
            throw BlockException.io("Could not create temporary overlay in '" + dir + "'", e);
        }
        EngineFile file;
        try {
            try (RandomAccessFile raf = new RandomAccessFile(path.toFile(), "rw")) {
                raf.setLength(length); // sparse: costs nothing until written
            }
            file = engine.open(path, false, false);
        } catch (IOException e) {
            throw BlockException.io("Could not open temporary overlay '" + path + "'", e);
        } finally {
            try {
                Files.deleteIfExists(path); // the open file stays usable; nothing is left behind
            } catch (IOException ignored) {
                // a leftover empty temporary file is harmless
            }
        }
        NodeSettings storeSettings = new NodeSettings(NodeSettings.autoName(), false, false, true,
                DiscardMode.UNMAP);
        FileNode store = new FileNode(storeSettings, path, file);
        return new SnapshotOverlay(settings.withNoFlush(true).withDirect(false), image, store, length);
    }

    /** {@code $TMPDIR}, or {@code /var/tmp} as QEMU's get_tmp_filename uses. */
    public static Path temporaryDirectory() {
        String env = System.getenv("TMPDIR");
        return Path.of(env != null && !env.isEmpty() ? env : "/var/tmp");
    }

    /** The image under the overlay. */
    public BlockNode image() {
        return image;
    }

    /** Whether the overlay holds the chunk that contains {@code offset}. */
    public boolean isAllocated(long offset) {
        return chunkAllocated(offset >>> CHUNK_SHIFT);
    }

    @Override
    public List<BlockChild> children() {
        return List.of(new BlockChild("file", store), new BlockChild("backing", image));
    }

    @Override
    public Capabilities capabilities() {
        return new Capabilities(false, false, false, 1, Capabilities.MAX_TRANSFER);
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public NodeInfo info() {
        return NodeInfo.simple(DRIVER);
    }

    @Override
    protected void doRead(long offset, ByteBuffer dst) throws BlockException {
        checkInside(offset, dst.remaining());
        int base = dst.position();
        long end = offset + dst.remaining();
        long pos = offset;
        while (pos < end) {
            boolean inOverlay = chunkAllocated(pos >>> CHUNK_SHIFT);
            long runEnd = runEnd(pos, end, inOverlay);
            ByteBuffer part = dst.duplicate();
            part.position(base + (int) (pos - offset)).limit(base + (int) (runEnd - offset));
            (inOverlay ? store : image).read(pos, part);
            pos = runEnd;
        }
        dst.position(dst.limit());
    }

    @Override
    protected void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        checkInside(offset, src.remaining());
        int base = src.position();
        forEachChunk(offset, src.remaining(), (from, to) -> {
            ByteBuffer part = src.duplicate();
            part.position(base + (int) (from - offset)).limit(base + (int) (to - offset));
            store.write(from, part, 0);
        });
        src.position(src.limit());
    }

    @Override
    protected void doWriteZeroes(long offset, long len, int flags) throws BlockException {
        checkInside(offset, len);
        int storeFlags = flags & (WriteFlags.MAY_UNMAP | WriteFlags.NO_FALLBACK);
        forEachChunk(offset, len, (from, to) -> store.writeZeroes(from, to - from, storeFlags));
    }

    /** Discard is advisory: what the overlay holds stays, since the image under it must not show through. */
    @Override
    protected void doDiscard(long offset, long len) {
    }

    @Override
    protected BlockStatus doBlockStatus(long offset, long len) throws BlockException {
        long end = offset + len;
        boolean inOverlay = chunkAllocated(offset >>> CHUNK_SHIFT);
        long run = runEnd(offset, end, inOverlay) - offset;
        if (inOverlay) {
            return new BlockStatus(run, BlockStatus.DATA | BlockStatus.ALLOCATED, 1);
        }
        BlockStatus below = image.blockStatus(offset, run);
        int depth = below.depth() == 0 ? 0 : below.depth() + 1;
        return new BlockStatus(below.length(), below.flags() & ~BlockStatus.ALLOCATED, depth);
    }

    // ------------------------------------------------------------ chunks

    @FunctionalInterface
    private interface RangeOp {
        void apply(long from, long to) throws BlockException;
    }

    /**
     * Runs {@code op} on each chunk's part of [offset, offset+len) in the store,
     * first copying from the image the rest of any chunk not yet in the overlay.
     */
    private void forEachChunk(long offset, long len, RangeOp op) throws BlockException {
        long end = offset + len;
        long pos = offset;
        while (pos < end) {
            long chunk = pos >>> CHUNK_SHIFT;
            long chunkStart = chunk << CHUNK_SHIFT;
            long chunkEnd = Math.min(chunkStart + CHUNK_SIZE, length);
            long to = Math.min(end, chunkEnd);
            if (chunkAllocated(chunk)) {
                op.apply(pos, to);
            } else {
                ReentrantLock lock = locks[(int) (chunk % LOCK_STRIPES)];
                lock.lock();
                try {
                    if (!chunkAllocated(chunk)) {
                        copyFromImage(chunkStart, pos);
                        copyFromImage(to, chunkEnd);
                    }
                    op.apply(pos, to);
                    markAllocated(chunk);
                } finally {
                    lock.unlock();
                }
            }
            pos = to;
        }
    }

    private void copyFromImage(long from, long to) throws BlockException {
        if (to <= from) {
            return;
        }
        ByteBuffer buf = ByteBuffer.allocate((int) (to - from));
        image.read(from, buf);
        buf.flip();
        store.write(from, buf, 0);
    }

    /** The end of the run starting at {@code pos} whose chunks are all (or all not) in the overlay. */
    private long runEnd(long pos, long end, boolean inOverlay) {
        long next = ((pos >>> CHUNK_SHIFT) + 1) << CHUNK_SHIFT;
        while (next < end && chunkAllocated(next >>> CHUNK_SHIFT) == inOverlay) {
            next += CHUNK_SIZE;
        }
        return Math.min(next, end);
    }

    private boolean chunkAllocated(long chunk) {
        return (allocated.get((int) (chunk >>> 6)) & (1L << (chunk & 63))) != 0;
    }

    private void markAllocated(long chunk) {
        long bit = 1L << (chunk & 63);
        allocated.getAndUpdate((int) (chunk >>> 6), w -> w | bit);
    }

    private void checkInside(long offset, long len) throws BlockException {
        if (offset > length || len > length - offset) {
            throw new BlockException(Errno.EIO, "request past the end of the snapshot overlay: offset " + offset
                    + ", length " + len + ", overlay length " + length);
        }
    }
}
