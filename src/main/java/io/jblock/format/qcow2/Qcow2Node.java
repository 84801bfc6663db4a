package io.jblock.format.qcow2;

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
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A qcow2 image: guest reads through the cluster map, from this image's file
 * (or its external data file), from compressed clusters, from the backing
 * file, or as zeroes; guest writes, zero-writes and discards through
 * {@link Qcow2Writes} when opened read-write.
 *
 * <p>One metadata lock guards the L1 table, the L2 and refcount caches and
 * the allocator; it is never held during guest data I/O, so requests on
 * different clusters run in parallel.
 */
public final class Qcow2Node extends BlockNode {
    private static final byte[] ZEROES = new byte[64 * 1024];

    private final Qcow2Header header;
    private final Qcow2Extensions extensions;
    private final Qcow2Geometry geometry;
    private final BlockNode file;
    private final BlockNode dataFile;
    private final BlockNode backing;
    private volatile long fileLength;
    private volatile long dataLength;
    private final Qcow2ClusterMap map;
    private final Qcow2Refcounts refcounts;
    /** The snapshot table as it is now on disk, and where (internal snapshots replace both). */
    private volatile List<Qcow2Snapshots.Snapshot> snapshots;
    private volatile long snapshotsOffset;
    private final ReentrantLock meta = new ReentrantLock();
    /** The incompatible feature bits as the file has them now (dirty and corrupt change while open). */
    private volatile long incompatibleFeatures;
    /** Header offset of the version 3 incompatible features. */
    private static final int HEADER_INCOMPATIBLE = 72;
    /** The virtual size: the header's, until a resize changes it. */
    private volatile long size;
    /** Null on a read-only image. */
    private final Qcow2Writes writes;
    private final Qcow2ZeroWrites zeroWrites;
    /** The persistent dirty bitmaps; every guest change marks the enabled ones. */
    private final Qcow2Bitmaps bitmaps;
    /** Set once the image was found corrupt while writing: every later request fails (QEMU drops the driver). */
    private volatile String corruption;
    /** The last compressed cluster decoded, by its L2 entry: sequential reads of one cluster decode it once. */
    private volatile Decoded lastDecoded;
    /** Whether the image looks preallocated (decided on first use, as QEMU does): see {@link #dataStatus}. */
    private volatile Boolean metadataPreallocated;

    /** Bumped whenever compressed data is written: the same L2 entry value may then mean new bytes. */
    private final java.util.concurrent.atomic.AtomicLong compressedGeneration = new java.util.concurrent.atomic.AtomicLong();

    private record Decoded(long entry, long generation, byte[] data) {
    }

    Qcow2Node(NodeSettings settings, Qcow2Header header, Qcow2Extensions extensions, BlockNode file,
              long fileLength, long[] l1, List<Qcow2Snapshots.Snapshot> snapshots, BlockNode dataFile,
              BlockNode backing) throws BlockException {
        super("qcow2", settings);
        this.header = header;
        this.extensions = extensions;
        this.geometry = Qcow2Geometry.of(header);
        this.file = file;
        this.dataFile = dataFile;
        this.backing = backing;
        this.fileLength = fileLength;
        this.dataLength = dataFile != null ? dataFile.length() : fileLength;
        this.size = header.size();
        this.incompatibleFeatures = header.incompatibleFeatures();
        this.map = new Qcow2ClusterMap(geometry, file, fileLength, l1, header.l1TableOffset());
        this.refcounts = new Qcow2Refcounts(file, fileLength, header);
        this.snapshots = snapshots;
        this.snapshotsOffset = header.snapshotsOffset();
        if (settings.readOnly()) {
            this.writes = null;
            this.zeroWrites = null;
        } else {
            map.enableWrites(refcounts);
            refcounts.setOverlapCheck(this::checkOverlap);
            Qcow2ClusterLocks clusters = new Qcow2ClusterLocks();
            this.writes = new Qcow2Writes(this, geometry, header.version(), file, dataFile, header.dataFileRaw(),
                    backing != null, map, refcounts, meta, clusters);
            this.zeroWrites = new Qcow2ZeroWrites(this, geometry, header.version(), file, dataFile,
                    header.dataFileRaw(), backing != null, map, refcounts, meta, clusters, writes);
        }
        this.bitmaps = Qcow2Bitmaps.open(this, geometry, header, extensions, file, fileLength, refcounts, map, meta,
                !settings.readOnly());
    }

    /** The image's persistent dirty bitmaps. */
    public Qcow2Bitmaps bitmaps() {
        return bitmaps;
    }

    /**
     * Which freed clusters are discarded in the file (QEMU's pass-discard-*
     * options): see {@link Qcow2Refcounts.FreeReason}.
     */
    void setDiscardPassthrough(java.util.Set<Qcow2Refcounts.FreeReason> reasons) {
        refcounts.setDiscardPassthrough(reasons);
    }

    /** The internal snapshots, in table order. */
    List<Qcow2Snapshots.Snapshot> snapshots() {
        return snapshots;
    }

    @Override
    public List<BlockChild> children() {
        List<BlockChild> c = new ArrayList<>(3);
        c.add(new BlockChild("file", file));
        if (dataFile != null) {
            c.add(new BlockChild("data-file", dataFile));
        }
        if (backing != null) {
            c.add(new BlockChild("backing", backing));
        }
        return c;
    }

    @Override
    public long length() {
        return size;
    }

    /** The backing node, or null. */
    public BlockNode backing() {
        return backing;
    }

    /**
     * The backing file name the header records, as opened (QEMU's
     * bs->backing_file), or null when it names none; recorded even when the
     * image was opened without its backing file.
     */
    public String recordedBackingName() throws BlockException {
        if (header.backingFileOffset() == 0) {
            return null;
        }
        ByteBuffer name = ByteBuffer.allocate(header.backingFileSize()); // bounded by the open's checks
        file.read(header.backingFileOffset(), name);
        return new String(name.array(), java.nio.charset.StandardCharsets.UTF_8);
    }

    /** The backing file format the header extension records (QEMU's bs->backing_format), or null. */
    public String recordedBackingFormat() {
        return extensions.backingFormat();
    }

    /** The reference count of the host cluster at {@code hostOffset}. */
    public long refcount(long hostOffset) throws BlockException {
        meta.lock();
        try {
            return refcounts.refcount(hostOffset);
        } finally {
            meta.unlock();
        }
    }

    /** Whether {@code [offset, offset + length)} overlaps a refcount block, for tests of the overlap check. */
    boolean overlapsRefcountBlock(long offset, long length) throws BlockException {
        meta.lock();
        try {
            return refcounts.overlapsBlock(offset, length);
        } finally {
            meta.unlock();
        }
    }

    /** The refcount table as it is now, for tests. */
    long[] refcountTable() throws BlockException {
        meta.lock();
        try {
            return refcounts.tableCopy();
        } finally {
            meta.unlock();
        }
    }

    /** How many L2 slices the cache holds now; never more than its bound. */
    int cachedL2Slices() {
        meta.lock();
        try {
            return map.cachedSlices();
        } finally {
            meta.unlock();
        }
    }

    /** The most L2 slices the cache holds. */
    int l2CacheCapacity() {
        return map.capacity();
    }

    // ---------------------------------------------------------------- reads

    @Override
    protected void doRead(long offset, ByteBuffer dst) throws BlockException {
        int n = dst.remaining();
        checkInside(offset, n);
        long pos = offset;
        long end = offset + n;
        ByteBuffer d = null;
        while (pos < end) {
            int len;
            Qcow2L2Entry.Type type;
            long host;
            long entry;
            // The lookup's result is read under the lock, into locals: no object per request.
            meta.lock();
            try {
                len = (int) map.find(pos, end - pos);
                type = map.foundType();
                host = map.foundHost();
                entry = map.foundEntry();
            } finally {
                meta.unlock();
            }
            if (d == null) {
                if (len == n && type == Qcow2L2Entry.Type.NORMAL && host <= dataLength - n) {
                    // One contiguous run of data inside the file (most reads): straight into the caller's buffer.
                    file.debugEvent(DebugEvent.READ_AIO);
                    (dataFile != null ? dataFile : file).read(host, dst);
                    dst.position(dst.limit());
                    return;
                }
                d = dst.duplicate();
            }
            d.limit(d.position() + len);
            switch (type) {
                case NORMAL -> readData(host, d);
                case COMPRESSED -> readCompressed(pos, entry, d);
                case ZERO_PLAIN, ZERO_ALLOC -> zero(d);
                case UNALLOCATED_PLAIN, UNALLOCATED_ALLOC -> readBacking(pos, d);
                case INVALID -> throw new IllegalStateException("the map reports invalid entries as corrupt");
            }
            d.position(d.limit());
            pos += len;
        }
        dst.position(dst.limit());
    }

    /** Data bytes; QEMU reads zeroes where a cluster runs past the end of its file, and so does jblock. */
    private void readData(long host, ByteBuffer d) throws BlockException {
        BlockNode data = dataFile != null ? dataFile : file;
        file.debugEvent(DebugEvent.READ_AIO);
        long inFile = Math.max(0, Math.min(d.remaining(), dataLength - host));
        if (inFile > 0) {
            ByteBuffer part = d.duplicate().limit(d.position() + (int) inFile);
            data.read(host, part);
        }
        if (inFile < d.remaining()) {
            zero(d.duplicate().position(d.position() + (int) inFile));
        }
    }

    private void readCompressed(long guest, long entry, ByteBuffer d) throws BlockException {
        Decoded dec = lastDecoded;
        long generation = compressedGeneration.get();
        if (dec == null || dec.entry() != entry || dec.generation() != generation) {
            dec = new Decoded(entry, generation, decompress(guest, entry));
            lastDecoded = dec;
        }
        int inCluster = (int) (guest & (geometry.clusterSize() - 1));
        d.duplicate().put(dec.data(), inCluster, d.remaining());
    }

    private byte[] decompress(long guest, long entry) throws BlockException {
        long host = Qcow2L2Entry.compressedOffset(entry, header.clusterBits());
        int size = Qcow2L2Entry.compressedSize(entry, header.clusterBits());
        if (host >= fileLength) {
            throw new BlockException.Corrupt("Compressed cluster at guest offset " + Qcow2ClusterMap.hex(guest)
                    + " has host offset " + Qcow2ClusterMap.hex(host)
                    + " past the end of the image file (length " + fileLength + ")");
        }
        // The entry counts whole sectors; the last compressed cluster of a file may end before them.
        int stored = (int) Math.min(size, fileLength - host);
        ByteBuffer in = ByteBuffer.allocate(stored);
        file.debugEvent(DebugEvent.READ_COMPRESSED);
        file.read(host, in);
        byte[] out = new byte[(int) geometry.clusterSize()];
        Qcow2Compression.decompress(header.compressionType(), in.array(), stored, out,
                guest & ~(geometry.clusterSize() - 1));
        return out;
    }

    private void readBacking(long guest, ByteBuffer d) throws BlockException {
        long inBacking = 0;
        if (backing != null) {
            inBacking = Math.max(0, Math.min(d.remaining(), backing.length() - guest));
            if (inBacking > 0) {
                file.debugEvent(DebugEvent.READ_BACKING_AIO);
                backing.read(guest, d.duplicate().limit(d.position() + (int) inBacking));
            }
        }
        zero(d.duplicate().position(d.position() + (int) inBacking));
    }

    private static void zero(ByteBuffer d) {
        while (d.hasRemaining()) {
            d.put(ZEROES, 0, Math.min(ZEROES.length, d.remaining()));
        }
    }

    // ---------------------------------------------------------------- block status

    @Override
    protected BlockStatus doBlockStatus(long offset, long length) throws BlockException {
        Qcow2ClusterMap.Extent e = lookup(offset, length);
        return switch (e.type()) {
            case NORMAL -> dataStatus(e.hostOffset(), e.length());
            case COMPRESSED -> new BlockStatus(e.length(), BlockStatus.DATA | BlockStatus.ALLOCATED, 1);
            case ZERO_PLAIN -> new BlockStatus(e.length(), BlockStatus.ZERO | BlockStatus.ALLOCATED, 1);
            case ZERO_ALLOC -> new BlockStatus(e.length(), BlockStatus.ZERO | BlockStatus.ALLOCATED, 1,
                    e.hostOffset(), dataFile != null ? dataFile : file);
            case UNALLOCATED_PLAIN -> backingStatus(offset, e.length());
            case UNALLOCATED_ALLOC -> nothingBelow(offset)
                    ? new BlockStatus(e.length(), BlockStatus.ZERO, 0, e.hostOffset(), dataFile != null ? dataFile : file)
                    : backingStatus(offset, e.length());
            case INVALID -> throw new IllegalStateException("the map reports invalid entries as corrupt");
        };
    }

    /**
     * Data clusters are data. Like QEMU's qcow2_co_block_status, jblock asks
     * the file below whether they sit on holes (and then reports them as zero)
     * only in an image whose metadata looks preallocated; elsewhere a data
     * cluster is plain data, as qemu-img map shows it.
     */
    private BlockStatus dataStatus(long host, long length) throws BlockException {
        int flags = BlockStatus.DATA | BlockStatus.ALLOCATED;
        BlockNode data = dataFile != null ? dataFile : file;
        if (!metadataPreallocated()) {
            return new BlockStatus(length, flags, 1, host, data);
        }
        if (host >= dataLength) {
            return new BlockStatus(length, flags | BlockStatus.ZERO, 1, host, data);
        }
        BlockStatus s = data.blockStatus(host, Math.min(length, dataLength - host));
        return new BlockStatus(s.length(), flags | (s.flags() & BlockStatus.ZERO), 1, host, data);
    }

    /**
     * QEMU's qcow2_detect_metadata_preallocation: the image counts as
     * preallocated when clearly more clusters are referenced than the file
     * really has allocated on the host (more than 10/9 of them, and at least 2 more).
     */
    private boolean metadataPreallocated() throws BlockException {
        Boolean known = metadataPreallocated;
        if (known == null) {
            long allocated = file.allocatedSize();
            if (allocated < 0) {
                known = false;
            } else {
                long real = allocated / geometry.clusterSize();
                long threshold = Math.max(real * 10 / 9, real + 2);
                long end = ceilDiv(fileLength, geometry.clusterSize());
                meta.lock();
                try {
                    known = refcounts.countReferenced(end, threshold) > threshold;
                } finally {
                    meta.unlock();
                }
            }
            metadataPreallocated = known;
        }
        return known;
    }

    /**
     * Whether no backing file has the bytes at {@code offset}; then an
     * unallocated subcluster of an allocated cluster reads as zero from its
     * own host cluster, whose offset QEMU reports (qemu-img map shows it).
     */
    private boolean nothingBelow(long offset) throws BlockException {
        return backing == null || offset >= backing.length();
    }

    private BlockStatus backingStatus(long offset, long length) throws BlockException {
        if (backing == null) {
            return new BlockStatus(length, BlockStatus.ZERO, 0);
        }
        long backingLength = backing.length();
        if (offset >= backingLength) {
            return new BlockStatus(length, BlockStatus.ZERO, 0);
        }
        BlockStatus s = backing.blockStatus(offset, Math.min(length, backingLength - offset));
        int flags = s.flags() & ~BlockStatus.ALLOCATED;
        return s.with(flags, s.depth() == 0 ? 0 : s.depth() + 1);
    }

    // ---------------------------------------------------------------- writes

    private Qcow2ClusterMap.Extent lookup(long offset, long max) throws BlockException {
        meta.lock();
        try {
            return map.lookup(offset, max);
        } finally {
            meta.unlock();
        }
    }

    @Override
    protected void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
        checkInside(offset, src.remaining());
        checkUsable();
        beforeChange();
        int n = src.remaining();
        try {
            if (WriteFlags.has(flags, WriteFlags.COMPRESSED)) {
                writes.writeCompressed(offset, src, header.compressionType());
            } else {
                writes.write(offset, src);
            }
        } finally {
            bitmaps.markDirty(offset, n); // as QEMU's bdrv_co_write_req_finish: whether or not the write worked
        }
        src.position(src.limit());
    }

    @Override
    protected void doTruncate(long length, boolean exact, Prealloc prealloc) throws BlockException {
        checkUsable();
        beforeChange();
        new Qcow2Resize(this, geometry, header, file, dataFile, map, refcounts, zeroWrites, meta)
                .resize(size, length, prealloc);
    }

    /**
     * For internal snapshots: every cluster the L1 table at {@code l1Offset}
     * reaches gains {@code addend} references, then COPIED flags are made exact
     * ({@link Qcow2SnapshotRefcounts}). Read-write images only.
     */
    void updateSnapshotRefcounts(long l1Offset, int l1Size, int addend) throws BlockException {
        if (writes == null) {
            throw new IllegalStateException("snapshot refcounts change only on a read-write image");
        }
        checkUsable();
        beforeChange();
        meta.lock();
        try {
            new Qcow2SnapshotRefcounts(geometry, file, map, refcounts).update(l1Offset, l1Size, addend);
        } finally {
            meta.unlock();
        }
    }

    /**
     * Taking, applying and deleting internal snapshots (qemu-img snapshot);
     * the image must be open read-write for every change.
     */
    public Qcow2InternalSnapshots internalSnapshots() {
        return new Qcow2InternalSnapshots(this, geometry, file, map, refcounts, meta);
    }

    /** The changes qemu-img amend makes (read-write images only). */
    public Qcow2Amend amendment() throws BlockException {
        if (writes == null) {
            throw new BlockException(Errno.EACCES, Errno.EACCES.text());
        }
        checkUsable();
        return new Qcow2Amend(this, geometry, file, map, refcounts, meta);
    }

    /** For amend: every cache written and the dirty bit cleared, if this node set it. */
    void markCleanForAmend() throws BlockException {
        flushToOs();
        markClean();
    }

    /**
     * Makes this read-only node show the snapshot with this id and name
     * (either may be null, not both) instead of the active layer, as QEMU's
     * bdrv_snapshot_load_tmp (convert -l): its L1 table and its disk size.
     */
    public void loadSnapshotTemporarily(String id, String name) throws BlockException {
        if (writes != null) {
            throw new BlockException(Errno.EINVAL, "Device is not readonly");
        }
        internalSnapshots().loadTemporarily(id, name);
    }

    /** The L1 table and size the reads see are a snapshot's now. */
    void snapshotLoaded(long[] l1, long diskSize) {
        meta.lock();
        try {
            map.loadL1(l1);
            size = diskSize;
        } finally {
            meta.unlock();
        }
    }

    /** Before an internal snapshot changes the image: it must be writable and usable. */
    void beforeSnapshotChange() throws BlockException {
        if (writes == null) {
            throw new BlockException(Errno.EACCES, "Permission denied");
        }
        checkUsable();
        beforeChange();
    }

    /** The snapshot table now on disk is {@code table}, at {@code offset}. */
    void snapshotsChanged(List<Qcow2Snapshots.Snapshot> table, long offset) {
        snapshots = table;
        snapshotsOffset = offset;
    }

    long snapshotsOffset() {
        return snapshotsOffset;
    }

    /** Metadata was written up to {@code end} of the file. */
    void fileGrewTo(long end) {
        fileGrew(end);
    }

    /** The active L1 table's offset and entries (a copy), for snapshots. */
    long activeL1Offset() {
        meta.lock();
        try {
            return map.l1Offset();
        } finally {
            meta.unlock();
        }
    }

    int activeL1Size() {
        meta.lock();
        try {
            return map.l1Size();
        } finally {
            meta.unlock();
        }
    }

    /**
     * QEMU's qcow2_change_backing_file: names over 1023 bytes and a backing
     * file under a raw external data file are refused (EINVAL); the rest is a
     * header rewrite ({@link Qcow2HeaderWriter}). The metadata caches reach
     * the disk first, so that data a rebase copied in is durable before the
     * image stops reading it from the old backing file.
     */
    @Override
    public void changeBackingFile(String backingFile, String backingFormat) throws BlockException {
        if (backingFile != null && backingFile.getBytes(java.nio.charset.StandardCharsets.UTF_8).length
                > Qcow2HeaderWriter.MAX_BACKING_NAME) {
            throw new BlockException(Errno.EINVAL, Errno.EINVAL.text());
        }
        if (backingFile != null && header.dataFileRaw()) {
            throw new BlockException(Errno.EINVAL, Errno.EINVAL.text());
        }
        if (writes == null) {
            throw new BlockException(Errno.EACCES, Errno.EACCES.text());
        }
        checkUsable();
        flushToOs();
        file.flush();
        meta.lock();
        try {
            Qcow2HeaderWriter.changeBacking(file, header, backingFile, backingFormat);
        } finally {
            meta.unlock();
        }
        file.flush();
    }

    /** A resize wrote the new virtual size into the header. */
    void sizeChanged(long newSize) {
        size = newSize;
        bitmaps.resized(newSize);
    }

    /** The current length of the image file, as jblock has grown it. */
    long fileLength() {
        return fileLength;
    }

    /** The external data file was resized. */
    void dataResized(long length) {
        dataLength = length;
    }

    /** The file was cut at {@code length} by a shrink. */
    void fileShrunk(long length) {
        fileLength = length;
        if (dataFile == null) {
            dataLength = length;
        }
    }

    @Override
    protected boolean supportsCompressedWrites() {
        return writes != null;
    }

    @Override
    protected void doWriteZeroes(long offset, long length, int flags) throws BlockException {
        checkInside(offset, length);
        checkUsable();
        beforeChange();
        try {
            zeroWrites.writeZeroes(offset, length, flags);
        } finally {
            bitmaps.markDirty(offset, length);
        }
    }

    @Override
    protected void doDiscard(long offset, long length) throws BlockException {
        checkInside(offset, length);
        checkUsable();
        beforeChange();
        try {
            zeroWrites.discard(offset, length);
        } finally {
            bitmaps.markDirty(offset, length);
        }
    }

    /**
     * QEMU's qcow2_make_empty, by its general path: every guest cluster is
     * discarded fully (entry emptied, cluster freed), so the image reads
     * from its backing file. (QEMU rebuilds a version 3 image from scratch
     * instead; the guest sees the same.)
     */
    @Override
    public void makeEmpty() throws BlockException {
        if (writes == null) {
            throw new BlockException(Errno.EACCES, Errno.EACCES.text());
        }
        checkUsable();
        beforeChange();
        if (size > 0) {
            zeroWrites.discardFully(0, size);
        }
    }

    /** Step one of a flush: dirty refcount blocks, then dirty L2 slices, reach the file (runs under no-flush too). */
    @Override
    public void flushToOs() throws BlockException {
        if (writes == null) {
            return;
        }
        meta.lock();
        try {
            if (refcounts.hasDirty() || map.hasDirty()) {
                file.debugEvent(DebugEvent.FLUSH_TO_OS);
            }
            map.writeDirty();
            refcounts.flush();
        } finally {
            meta.unlock();
        }
    }

    /**
     * With lazy refcounts (version 3), the first change marks the image dirty
     * in its header, on disk, before any metadata is written out of order
     * (QEMU's qcow2_mark_dirty); a clean close clears the bit again.
     */
    private void beforeChange() throws BlockException {
        if (!header.lazyRefcounts() || header.version() < 3
                || (incompatibleFeatures & Qcow2Header.INCOMPAT_DIRTY) != 0) {
            return;
        }
        meta.lock();
        try {
            if ((incompatibleFeatures & Qcow2Header.INCOMPAT_DIRTY) != 0) {
                return;
            }
            // Whatever is cached so far was written in order; the bit must be durable before anything is not.
            map.writeDirty();
            refcounts.flush();
            file.flush();
            long dirty = incompatibleFeatures | Qcow2Header.INCOMPAT_DIRTY;
            file.write(HEADER_INCOMPATIBLE, ByteBuffer.allocate(8).putLong(0, dirty), 0);
            file.flush();
            incompatibleFeatures = dirty;
            map.setLazyRefcounts(true);
        } finally {
            meta.unlock();
        }
    }

    /** QEMU's qcow2_mark_clean: every cache written and flushed, then the dirty bit cleared. */
    private void markClean() throws BlockException {
        if ((incompatibleFeatures & Qcow2Header.INCOMPAT_DIRTY) == 0
                || (header.incompatibleFeatures() & Qcow2Header.INCOMPAT_DIRTY) != 0) {
            return;
        }
        meta.lock();
        try {
            map.writeDirty();
            refcounts.flush();
            file.flush();
            long clean = incompatibleFeatures & ~Qcow2Header.INCOMPAT_DIRTY;
            file.write(HEADER_INCOMPATIBLE, ByteBuffer.allocate(8).putLong(0, clean), 0);
            file.flush();
            incompatibleFeatures = clean;
            map.setLazyRefcounts(false);
        } finally {
            meta.unlock();
        }
    }

    @Override
    public void close() throws BlockException {
        BlockException first = null;
        if (writes != null && corruption == null) {
            try {
                // QEMU's qcow2_inactivate: bitmaps first, then the caches, then the dirty bit. A bitmap that
                // cannot be stored is lost (reported), never the guest's data: the caches are written anyway.
                bitmaps.store();
            } catch (BlockException e) {
                first = e;
            }
            try {
                flushToOs();
                markClean();
            } catch (BlockException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        try {
            super.close();
        } catch (BlockException e) {
            if (first == null) {
                first = e;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    @Override
    public Capabilities capabilities() {
        return new Capabilities(false, writes != null && header.version() >= 3, writes != null, 1,
                Capabilities.MAX_TRANSFER);
    }

    /** Guest bytes as the image reads them now (copy-on-write sources). */
    void readGuest(long offset, ByteBuffer dst) throws BlockException {
        doRead(offset, dst);
    }

    /** Whether guest bytes read as zero, by block status (QEMU's is_zero); an empty range does. */
    boolean readsAsZero(long offset, long length) throws BlockException {
        long pos = offset;
        while (pos < offset + length) {
            BlockStatus s = doBlockStatus(pos, offset + length - pos);
            if ((s.flags() & BlockStatus.ZERO) == 0) {
                return false;
            }
            pos += s.length();
        }
        return true;
    }

    /** Compressed bytes are about to be written: forget the last decoded cluster. */
    void compressedWritten() {
        compressedGeneration.incrementAndGet();
        lastDecoded = null;
    }

    /** Guest data reached host offset {@code end} of the data file (or this image's file). */
    void dataGrew(long end) {
        if (dataFile != null) {
            if (end > dataLength) {
                dataLength = end;
            }
        } else {
            fileGrew(end);
        }
    }

    private void fileGrew(long end) {
        if (end > fileLength) {
            fileLength = end;
            if (dataFile == null && end > dataLength) {
                dataLength = end;
            }
        }
        map.fileGrew(end);
        refcounts.fileGrew(end);
    }

    void checkUsable() throws BlockException {
        String c = corruption;
        if (c != null) {
            throw new BlockException(Errno.EIO, "qcow2 image is corrupt (" + c + "); no further requests");
        }
    }

    /**
     * QEMU's qcow2_pre_write_overlap_check, the cheap part: a newly allocated
     * range must not overlap the header, the active L1 table, the refcount
     * table or blocks, or an active L2 table. One that does means the
     * refcounts are wrong: the image is marked corrupt and the write fails.
     */
    private void checkOverlap(long offset, long length, String what) throws BlockException {
        String with = null;
        if (offset < geometry.clusterSize()) {
            with = "qcow2_header";
        } else if (overlaps(offset, length, map.l1Offset(), map.l1Size() * 8L)) {
            with = "active L1 table";
        } else if (overlaps(offset, length, refcounts.tableOffset(), refcounts.tableBytes())) {
            with = "refcount table";
        } else if (refcounts.overlapsBlock(offset, length)) {
            with = "refcount block";
        } else if (map.overlapsL2(offset, length)) {
            with = "active L2 table";
        }
        if (with != null) {
            throw markCorrupt("Preventing invalid allocation of " + what + " at offset "
                    + Qcow2ClusterMap.hex(offset) + " (overlaps with " + with + ")");
        }
    }

    private static boolean overlaps(long a, long aLen, long b, long bLen) {
        return bLen > 0 && a < b + bLen && b < a + aLen;
    }

    /**
     * QEMU's qcow2_signal_corruption: the corrupt bit goes into a version 3
     * header, the message to the log, and the node refuses every later request.
     */
    BlockException markCorrupt(String message) {
        if (corruption == null) {
            corruption = message;
            System.getLogger("io.jblock.format.qcow2").log(System.Logger.Level.ERROR,
                    "qcow2: Marking image as corrupt: " + message + "; further corruption events will be suppressed");
            if (header.version() >= 3) {
                try {
                    incompatibleFeatures |= Qcow2Header.INCOMPAT_CORRUPT;
                    file.write(HEADER_INCOMPATIBLE, ByteBuffer.allocate(8).putLong(0, incompatibleFeatures), 0);
                    file.flush();
                } catch (BlockException e) {
                    // The request fails anyway; the image stays unusable in this process.
                }
            }
        }
        return new BlockException.Corrupt(message);
    }

    // ---------------------------------------------------------------- info

    @Override
    public NodeInfo info() {
        Map<String, Object> m = new LinkedHashMap<>();
        if (header.version() == 2) {
            m.put("compat", "0.10");
            m.put("compression-type", Qcow2Compression.name(header.compressionType()));
            m.put("refcount-bits", header.refcountBits());
        } else {
            m.put("compat", "1.1");
            m.put("compression-type", Qcow2Compression.name(header.compressionType()));
            m.put("lazy-refcounts", header.lazyRefcounts());
            List<Qcow2Bitmaps.Info> stored = bitmaps.stored();
            if (!stored.isEmpty()) {
                m.put("bitmaps", Qcow2Bitmaps.infoList(stored));
            }
            m.put("refcount-bits", header.refcountBits());
            if (header.hasDataFile()) {
                if (extensions.dataFile() != null) {
                    m.put("data-file", extensions.dataFile());
                }
                m.put("data-file-raw", header.dataFileRaw());
            }
            m.put("corrupt", (incompatibleFeatures & Qcow2Header.INCOMPAT_CORRUPT) != 0);
            m.put("extended-l2", header.hasExtendedL2());
        }
        long vmStateOffset = ceilDiv(size, geometry.l1Span()) * geometry.l1Span();
        return new NodeInfo("qcow2", geometry.clusterSize(), vmStateOffset, m);
    }

    private static long ceilDiv(long a, long b) {
        return a / b + (a % b != 0 ? 1 : 0);
    }

    private void checkInside(long offset, long n) throws BlockException {
        long size = this.size;
        if (offset > size - n) {
            throw new BlockException.BadRequest(Errno.EIO, "request outside the image: offset " + offset
                    + ", length " + n + ", image size " + size);
        }
    }
}
