package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The persistent dirty bitmaps of one qcow2 image, kept the way QEMU 7.2's
 * qcow2-bitmap.c keeps them:
 *
 * <ul>
 *   <li>open: the directory is read and checked (a bad one fails the open,
 *       read-only too), each bitmap not "in use" has its table checked. A
 *       bitmap found "in use" was not stored after its last change: it is
 *       inconsistent, kept on disk as it is, refused by every operation but
 *       removal.</li>
 *   <li>read-write open: every bitmap is loaded into memory, and the
 *       consistent ones are marked "in use" in the directory (rewritten in
 *       place, under a cleared autoclear bit, each step flushed) before any
 *       guest write. Bitmaps with the "auto" flag are enabled: every guest
 *       write, zero-write and discard marks the granules it touches.</li>
 *   <li>close: every consistent bitmap is stored to new clusters (data
 *       clusters with a dirty bit, then its table), a new directory is
 *       written, the refcounts reach the file and are flushed, the header
 *       switches to the new directory, and only then are the old directory
 *       and tables freed. A crash at any point leaves leaks at worst.</li>
 *   <li>read-only open: nothing is written; bitmap data is read on demand
 *       (convert --bitmaps, merge sources), not at open.</li>
 * </ul>
 *
 * <p>The guest write path calls {@link #markDirty} once per request; it
 * allocates nothing. The bitmap words are guarded by this object's lock,
 * the directory and allocations by the image's metadata lock.
 */
public final class Qcow2Bitmaps {
    /** A bitmap as {@code qemu-img info} lists it (from the directory on disk). */
    public record Info(String name, long granularity, boolean inUse, boolean auto) {
    }

    /** A bitmap held in memory, in QEMU's list order (newest first). */
    public record Live(String name, long granularity, boolean enabled, boolean inconsistent) {
    }

    /** QEMU's QCOW2_MAX_BITMAPS. */
    private static final long MAX_BITMAPS = Qcow2Extensions.Bitmaps.MAX_BITMAPS;
    private static final int HEADER_AUTOCLEAR = 88;

    private final Qcow2Node node;
    private final Qcow2Geometry g;
    private final Qcow2Header header;
    private final BlockNode file;
    private final Qcow2Refcounts refcounts;
    private final Qcow2ClusterMap map;
    private final ReentrantLock meta;
    private final boolean writable;
    private final ReentrantLock lock = new ReentrantLock();
    /** The directory as it is on disk now, and where. */
    private List<Qcow2BitmapDirectory.Entry> directory;
    private Qcow2Extensions.Bitmaps ext;
    /** QEMU's bs->dirty_bitmaps: newest first (loaded ones in reverse directory order). */
    private final List<Qcow2DirtyBitmap> list = new ArrayList<>();
    /**
     * The most memory the bitmaps of one image may take: QEMU allows 512 MiB
     * per bitmap and 65535 bitmaps, and allocates them all at open; jblock
     * refuses, with a clear error, what would exhaust its heap.
     */
    static final long MEMORY_LIMIT = Math.max(64L << 20, Runtime.getRuntime().maxMemory() / 4);
    /** Bytes of bitmap words held in memory. */
    private long memory;
    /** The enabled, consistent bitmaps: what a guest write marks. */
    private volatile Qcow2DirtyBitmap[] active = new Qcow2DirtyBitmap[0];

    private Qcow2Bitmaps(Qcow2Node node, Qcow2Geometry g, Qcow2Header header, BlockNode file,
                         Qcow2Refcounts refcounts, Qcow2ClusterMap map, ReentrantLock meta, boolean writable) {
        this.node = node;
        this.g = g;
        this.header = header;
        this.file = file;
        this.refcounts = refcounts;
        this.map = map;
        this.meta = meta;
        this.writable = writable;
    }

    /**
     * Reads the directory (QEMU's qcow2_load_dirty_bitmaps) and, on a
     * writable image, loads every bitmap and marks the consistent ones in use.
     */
    static Qcow2Bitmaps open(Qcow2Node node, Qcow2Geometry g, Qcow2Header header, Qcow2Extensions extensions,
                             BlockNode file, long fileLength, Qcow2Refcounts refcounts, Qcow2ClusterMap map,
                             ReentrantLock meta, boolean writable) throws BlockException {
        Qcow2Bitmaps b = new Qcow2Bitmaps(node, g, header, file, refcounts, map, meta, writable);
        b.ext = extensions.bitmaps();
        b.directory = b.ext == null ? List.of()
                : Qcow2BitmapDirectory.load(file, fileLength, b.ext, g.clusterSize(), header.size());
        for (Qcow2BitmapDirectory.Entry e : b.directory) {
            if (b.find(e.name()) != null) {
                throw new BlockException(Errno.EINVAL, "Bitmap already exists: " + e.name());
            }
            Qcow2DirtyBitmap bm = new Qcow2DirtyBitmap(e.name(), e.granularityBits(), header.size(), e.auto(),
                    e.inUse(), e.inUse());
            if (!e.inUse()) {
                long[] table = b.table(e);
                if (table.length != bm.tableSize(g.clusterSize())) {
                    throw new BlockException(Errno.EINVAL, "Could not read bitmap '" + e.name()
                            + "' from image: " + Errno.EINVAL.text());
                }
                if (writable) {
                    b.loadData(bm, table, fileLength);
                }
            }
            b.list.addFirst(bm);
        }
        if (writable && b.directory.stream().anyMatch(e -> !e.inUse())) {
            b.markInUse();
        }
        b.refreshActive();
        return b;
    }

    private long[] table(Qcow2BitmapDirectory.Entry e) throws BlockException {
        try {
            return Qcow2BitmapDirectory.loadTable(file, node.fileLength(), e, g.clusterSize());
        } catch (BlockException ex) {
            throw new BlockException(ex.errno(), "Could not read bitmap_table table from image for bitmap '"
                    + e.name() + "': " + ex.errno().text());
        }
    }

    /** QEMU's load_bitmap_data: 0 entries are clean, 1 entries all dirty, others name a data cluster. */
    private void loadData(Qcow2DirtyBitmap bm, long[] table, long fileLength) throws BlockException {
        reserve(bm);
        bm.setLoaded();
        int cs = (int) g.clusterSize();
        ByteBuffer buf = ByteBuffer.allocate(cs);
        for (int k = 0; k < table.length; k++) {
            long offset = table[k] & Qcow2BitmapDirectory.TABLE_OFFSET;
            if (offset == 0) {
                if ((table[k] & Qcow2BitmapDirectory.TABLE_ALL_ONES) != 0) {
                    bm.fillCluster(k, cs);
                }
                continue;
            }
            java.util.Arrays.fill(buf.array(), (byte) 0);
            // As QEMU, a data cluster past the end of the file reads as zeroes; jblock never reads outside it.
            long inFile = Math.max(0, Math.min(cs, fileLength - offset));
            if (inFile > 0) {
                file.read(offset, buf.clear().limit((int) inFile));
            }
            bm.deserializeCluster(k, buf.clear());
        }
    }

    /** Loads a bitmap's words on a read-only image, when something needs them. */
    private void ensureLoaded(Qcow2DirtyBitmap bm) throws BlockException {
        if (bm.loaded()) {
            return;
        }
        Qcow2BitmapDirectory.Entry e = entry(directory, bm.name);
        if (e == null) {
            reserve(bm);
            bm.setLoaded();
            return;
        }
        loadData(bm, table(e), node.fileLength());
    }

    /**
     * QEMU's update_ext_header_and_dir_in_place with every consistent bitmap
     * flagged in use: the autoclear bit goes off (so a crash in between
     * drops the bitmaps, never trusts a half-written directory), the
     * directory is rewritten where it is, then the bit comes back.
     */
    private void markInUse() throws BlockException {
        List<Qcow2BitmapDirectory.Entry> updated = new ArrayList<>();
        for (Qcow2BitmapDirectory.Entry e : directory) {
            updated.add(e.withFlags(e.flags() | Qcow2BitmapDirectory.FLAG_IN_USE));
        }
        ByteBuffer autoclear = ByteBuffer.allocate(8);
        file.read(HEADER_AUTOCLEAR, autoclear);
        long bits = autoclear.getLong(0);
        file.write(HEADER_AUTOCLEAR, ByteBuffer.allocate(8).putLong(0, bits & ~Qcow2Header.AUTOCLEAR_BITMAPS), 0);
        file.flush();
        file.write(ext.directoryOffset(), Qcow2BitmapDirectory.encode(updated), 0);
        file.flush();
        file.write(HEADER_AUTOCLEAR, ByteBuffer.allocate(8).putLong(0, bits | Qcow2Header.AUTOCLEAR_BITMAPS), 0);
        file.flush();
        directory = List.copyOf(updated);
    }

    // ---------------------------------------------------------------- the guest write hook

    /** A guest write, zero-write or discard touched {@code [offset, offset + length)}: once per request. */
    void markDirty(long offset, long length) {
        Qcow2DirtyBitmap[] a = active;
        if (a.length == 0) {
            return;
        }
        lock.lock();
        try {
            for (Qcow2DirtyBitmap b : a) {
                b.setRange(offset, length);
            }
        } finally {
            lock.unlock();
        }
    }

    private void refreshActive() {
        active = list.stream().filter(b -> b.enabled && !b.inconsistent && b.loaded())
                .toArray(Qcow2DirtyBitmap[]::new);
    }

    // ---------------------------------------------------------------- what tools see

    /** The bitmaps in the directory on disk, in its order (qemu-img info). */
    public List<Info> stored() {
        lock.lock();
        try {
            List<Info> out = new ArrayList<>();
            for (Qcow2BitmapDirectory.Entry e : directory) {
                out.add(new Info(e.name(), 1L << e.granularityBits(), e.inUse(), e.auto()));
            }
            return out;
        } finally {
            lock.unlock();
        }
    }

    /**
     * The format-specific "bitmaps" list of qemu-img info (QAPI
     * Qcow2BitmapInfo): flags ("in-use", "auto"), name, granularity.
     */
    static List<Object> infoList(List<Info> stored) {
        List<Object> out = new ArrayList<>();
        for (Info i : stored) {
            List<Object> flags = new ArrayList<>();
            if (i.inUse()) {
                flags.add("in-use");
            }
            if (i.auto()) {
                flags.add("auto");
            }
            java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
            m.put("flags", flags);
            m.put("name", i.name());
            m.put("granularity", i.granularity());
            out.add(m);
        }
        return out;
    }

    /** The bitmaps in memory, in QEMU's order (newest first), as convert --bitmaps walks them. */
    public List<Live> live() {
        lock.lock();
        try {
            return list.stream().map(b -> new Live(b.name, b.granularity(), b.enabled, b.inconsistent)).toList();
        } finally {
            lock.unlock();
        }
    }

    /**
     * QEMU's qcow2_get_persistent_dirty_bitmap_size: the bytes copying every
     * bitmap (inconsistent ones too) would take in an image of
     * {@code clusterSize}, as if each were fully allocated: data, table, and
     * the directory.
     */
    public long measure(long clusterSize) {
        lock.lock();
        try {
            long total = 0;
            long dir = 0;
            for (Qcow2DirtyBitmap b : list) {
                long bytes = ((b.size() + b.granularity() - 1) / b.granularity() + 7) / 8;
                long clusters = (bytes + clusterSize - 1) / clusterSize;
                total += clusters * clusterSize;
                total += (clusters * 8 + clusterSize - 1) / clusterSize * clusterSize;
                dir += Qcow2BitmapDirectory.entrySize(Qcow2BitmapDirectory.nameBytes(b.name), 0);
            }
            return total + (dir + clusterSize - 1) / clusterSize * clusterSize;
        } finally {
            lock.unlock();
        }
    }

    /** Whether the image format can hold persistent bitmaps (version 3). */
    public boolean supported() {
        return header.version() >= 3;
    }

    /**
     * The dirty byte ranges of a bitmap, as {start, length} pairs in order
     * (each a run of dirty granules, cut at the image end); for tests and tools.
     */
    public List<long[]> dirtyRanges(String name) throws BlockException {
        lock.lock();
        try {
            Qcow2DirtyBitmap bm = lookup(name);
            ensureLoaded(bm);
            List<long[]> out = new ArrayList<>();
            long bits = bm.bits();
            long bit = bm.nextSet(0);
            while (bit >= 0 && bit < bits) {
                long end = Math.min(bits, bm.nextClear(bit));
                long start = bit << bm.granularityBits;
                out.add(new long[] {start, Math.min(bm.size(), end << bm.granularityBits) - start});
                bit = bm.nextSet(end);
            }
            return out;
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- QMP's block-dirty-bitmap-* (qemu-img bitmap)

    /**
     * block-dirty-bitmap-add with persistent=on, as qemu-img bitmap --add and
     * convert --bitmaps make it: {@code granularity} 0 means the default
     * (the cluster size, within 4 KiB..64 KiB). {@code nodeName} is what
     * QEMU's messages call the image.
     */
    public void add(String name, long granularity, boolean disabled, String nodeName) throws BlockException {
        if (name.isEmpty()) {
            throw new BlockException(Errno.EINVAL, "Bitmap name cannot be empty");
        }
        // QMP's granularity is a uint32: qemu-img passes the low 32 bits of what it parsed.
        long gran = granularity & 0xffffffffL;
        if (granularity != 0) {
            if (gran < 512 || Long.bitCount(gran) != 1) {
                throw new BlockException(Errno.EINVAL, "Granularity must be power of 2 and at least 512");
            }
        } else {
            gran = Math.min(65536, Math.max(4096, g.clusterSize()));
        }
        lock.lock();
        try {
            if (find(name) != null) {
                throw new BlockException(Errno.EINVAL, "Bitmap already exists: " + name);
            }
            String prefix = "Can't make bitmap '" + name + "' persistent in '" + nodeName + "': ";
            if (header.version() < 3) {
                throw new BlockException(Errno.EINVAL, prefix + "Cannot store dirty bitmaps in qcow2 v2 files");
            }
            String why = constraints(name, gran);
            if (why != null) {
                throw new BlockException(Errno.EINVAL, prefix + why);
            }
            long count = 1;
            long dirSize = Qcow2BitmapDirectory.entrySize(Qcow2BitmapDirectory.nameBytes(name), 0);
            for (Qcow2DirtyBitmap b : list) {
                count++;
                dirSize += Qcow2BitmapDirectory.entrySize(Qcow2BitmapDirectory.nameBytes(b.name), 0);
            }
            if (count > MAX_BITMAPS) {
                throw new BlockException(Errno.EINVAL, prefix
                        + "Maximum number of persistent bitmaps is already reached");
            }
            if (dirSize > Qcow2Extensions.Bitmaps.MAX_DIRECTORY_SIZE) {
                throw new BlockException(Errno.EINVAL, prefix + "Not enough space in the bitmap directory");
            }
            Qcow2DirtyBitmap bm = new Qcow2DirtyBitmap(name, Long.numberOfTrailingZeros(gran), node.length(),
                    !disabled, false, false);
            reserve(bm);
            bm.setLoaded();
            list.addFirst(bm);
            refreshActive();
        } finally {
            lock.unlock();
        }
    }

    /** QEMU's check_constraints_on_bitmap: null when the bitmap may be stored. */
    private String constraints(String name, long granularity) {
        int bits = Long.numberOfTrailingZeros(granularity);
        if (bits > Qcow2BitmapDirectory.MAX_GRANULARITY_BITS) {
            return "Granularity exceeds maximum (" + (1L << Qcow2BitmapDirectory.MAX_GRANULARITY_BITS) + " bytes)";
        }
        if (bits < Qcow2BitmapDirectory.MIN_GRANULARITY_BITS) {
            return "Granularity is under minimum (" + (1L << Qcow2BitmapDirectory.MIN_GRANULARITY_BITS) + " bytes)";
        }
        long len = node.length();
        long bytes = ((len + granularity - 1) / granularity + 7) / 8;
        if (bytes > Qcow2BitmapDirectory.MAX_PHYS_SIZE
                || bytes > Qcow2BitmapDirectory.MAX_TABLE_SIZE * g.clusterSize()) {
            return "Too much space will be occupied by the bitmap. Use larger granularity";
        }
        if (Qcow2BitmapDirectory.nameBytes(name) > Qcow2BitmapDirectory.MAX_NAME_BYTES) {
            return "Name length exceeds maximum (" + Qcow2BitmapDirectory.MAX_NAME_BYTES + " characters)";
        }
        return null;
    }

    /**
     * block-dirty-bitmap-remove: the directory is rewritten without it at
     * once (even an inconsistent one), then its clusters are freed.
     */
    public void remove(String name) throws BlockException {
        lock.lock();
        try {
            Qcow2DirtyBitmap bm = lookup(name);
            checkWritable(bm);
            Qcow2BitmapDirectory.Entry e = entry(directory, name);
            if (e != null) {
                meta.lock();
                try {
                    List<Qcow2BitmapDirectory.Entry> rest = new ArrayList<>(directory);
                    rest.remove(e);
                    writeDirectory(rest);
                    freeTable(e);
                } finally {
                    meta.unlock();
                }
            }
            list.remove(bm);
            if (bm.loaded()) {
                memory -= bm.serializedBytes();
            }
            refreshActive();
        } finally {
            lock.unlock();
        }
    }

    /** block-dirty-bitmap-clear. */
    public void clear(String name) throws BlockException {
        lock.lock();
        try {
            Qcow2DirtyBitmap bm = usable(lookup(name));
            ensureLoaded(bm);
            bm.clear();
        } finally {
            lock.unlock();
        }
    }

    /** block-dirty-bitmap-enable / -disable. */
    public void setEnabled(String name, boolean enabled) throws BlockException {
        lock.lock();
        try {
            Qcow2DirtyBitmap bm = lookup(name);
            if (bm.inconsistent) {
                throw inconsistent(bm);
            }
            bm.enabled = enabled;
            refreshActive();
        } finally {
            lock.unlock();
        }
    }

    /**
     * block-dirty-bitmap-merge of bitmap {@code srcName} of {@code source}
     * (this image or another one) into {@code target}.
     */
    public void merge(String target, Qcow2Bitmaps source, String srcName) throws BlockException {
        lock.lock();
        try {
            Qcow2DirtyBitmap dst = usable(lookup(target));
            Qcow2DirtyBitmap src = source == null ? null : source == this ? find(srcName) : source.lockedFind(srcName);
            if (src == null) {
                throw new BlockException(Errno.EINVAL, "Dirty bitmap '" + srcName + "' not found");
            }
            mergeInto(dst, source, src);
        } finally {
            lock.unlock();
        }
    }

    private Qcow2DirtyBitmap lockedFind(String name) {
        lock.lock();
        try {
            return find(name);
        } finally {
            lock.unlock();
        }
    }

    private void mergeInto(Qcow2DirtyBitmap dst, Qcow2Bitmaps source, Qcow2DirtyBitmap src) throws BlockException {
        if (src.inconsistent) {
            throw inconsistent(src);
        }
        if (src.size() != dst.size()) {
            throw new BlockException(Errno.EINVAL, "Bitmaps are of different sizes (destination size is "
                    + dst.size() + ", source size is " + src.size() + ") and can't be merged");
        }
        ensureLoaded(dst);
        if (source != this) {
            source.lock.lock();
        }
        try {
            source.ensureLoaded(src);
            dst.merge(src);
        } finally {
            if (source != this) {
                source.lock.unlock();
            }
        }
    }

    /** Counts a bitmap's words against {@link #MEMORY_LIMIT} before they are allocated. */
    private void reserve(Qcow2DirtyBitmap bm) throws BlockException {
        long need = bm.serializedBytes();
        if (memory + need > MEMORY_LIMIT) {
            throw new BlockException(Errno.ENOMEM, "Bitmap '" + bm.name + "' needs " + need
                    + " bytes of memory; with the image's other bitmaps (" + memory + " bytes) that is more than"
                    + " jblock allows (" + MEMORY_LIMIT + " bytes)");
        }
        memory += need;
    }

    private Qcow2DirtyBitmap lookup(String name) throws BlockException {
        Qcow2DirtyBitmap bm = find(name);
        if (bm == null) {
            throw new BlockException(Errno.EINVAL, "Dirty bitmap '" + name + "' not found");
        }
        return bm;
    }

    private Qcow2DirtyBitmap find(String name) {
        for (Qcow2DirtyBitmap b : list) {
            if (b.name.equals(name)) {
                return b;
            }
        }
        return null;
    }

    /** BDRV_BITMAP_DEFAULT: neither read-only nor inconsistent. */
    private Qcow2DirtyBitmap usable(Qcow2DirtyBitmap bm) throws BlockException {
        checkWritable(bm);
        if (bm.inconsistent) {
            throw inconsistent(bm);
        }
        return bm;
    }

    private void checkWritable(Qcow2DirtyBitmap bm) throws BlockException {
        if (!writable) {
            throw new BlockException(Errno.EPERM, "Bitmap '" + bm.name + "' is readonly and cannot be modified");
        }
    }

    private static BlockException inconsistent(Qcow2DirtyBitmap bm) {
        return new BlockException(Errno.EINVAL, "Bitmap '" + bm.name + "' is inconsistent and cannot be used\n"
                + "Try block-dirty-bitmap-remove to delete this bitmap from disk");
    }

    private static Qcow2BitmapDirectory.Entry entry(List<Qcow2BitmapDirectory.Entry> dir, String name) {
        for (Qcow2BitmapDirectory.Entry e : dir) {
            if (e.name().equals(name)) {
                return e;
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- resize

    /** QEMU's qcow2_truncate_bitmaps_check: an inconsistent bitmap stops a resize. */
    void checkResizable() throws BlockException {
        lock.lock();
        try {
            for (Qcow2BitmapDirectory.Entry e : directory) { // QEMU walks the directory, in its order
                Qcow2DirtyBitmap b = find(e.name());
                if (b != null && b.inconsistent) {
                    throw inconsistent(b);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** The virtual size changed: every bitmap follows (new granules clean). */
    void resized(long newSize) {
        lock.lock();
        try {
            for (Qcow2DirtyBitmap b : list) {
                long before = b.loaded() ? b.serializedBytes() : 0;
                b.resize(newSize);
                memory += b.loaded() ? b.serializedBytes() - before : 0;
            }
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- storing

    /**
     * QEMU's qcow2_store_persistent_dirty_bitmaps, on close of a writable
     * image: every consistent bitmap is written to new clusters with flags
     * "auto" (enabled) or none, the directory switched, old clusters freed.
     * Inconsistent bitmaps stay in the directory as they are (still in use).
     */
    void store() throws BlockException {
        if (!writable) {
            return;
        }
        lock.lock();
        meta.lock();
        try {
            List<Qcow2BitmapDirectory.Entry> dir = new ArrayList<>(directory);
            List<Qcow2DirtyBitmap> toStore = new ArrayList<>();
            List<Qcow2BitmapDirectory.Entry> drop = new ArrayList<>();
            for (Qcow2DirtyBitmap b : list) {
                if (b.inconsistent) {
                    continue;
                }
                String why = constraints(b.name, b.granularity());
                if (why != null) {
                    throw new BlockException(Errno.EINVAL, "Bitmap '" + b.name
                            + "' doesn't satisfy the constraints: " + why);
                }
                Qcow2BitmapDirectory.Entry e = entry(dir, b.name);
                if (e == null) {
                    if (dir.size() + 1 > MAX_BITMAPS) {
                        throw new BlockException(Errno.EINVAL, "Too many persistent bitmaps");
                    }
                    dir.add(new Qcow2BitmapDirectory.Entry(0, 0, 0, Qcow2BitmapDirectory.TYPE_DIRTY_TRACKING,
                            b.granularityBits, b.name));
                    if (Qcow2BitmapDirectory.size(dir) > Qcow2Extensions.Bitmaps.MAX_DIRECTORY_SIZE) {
                        throw new BlockException(Errno.EINVAL, "Bitmap directory is too large");
                    }
                } else {
                    if (!e.inUse()) {
                        throw new BlockException(Errno.EINVAL, "Bitmap '" + b.name + "' already exists in the image");
                    }
                    drop.add(e);
                }
                toStore.add(b);
            }
            if (toStore.isEmpty()) {
                return;
            }
            List<long[]> written = new ArrayList<>();
            try {
                for (Qcow2DirtyBitmap b : toStore) {
                    long[] t = storeBitmap(b);
                    written.add(t);
                    int i = indexOf(dir, b.name);
                    dir.set(i, new Qcow2BitmapDirectory.Entry(t[0], (int) t[1],
                            b.enabled ? Qcow2BitmapDirectory.FLAG_AUTO : 0, Qcow2BitmapDirectory.TYPE_DIRTY_TRACKING,
                            b.granularityBits, b.name));
                }
                writeDirectory(dir);
            } catch (BlockException e) {
                // Nothing points at the new clusters yet: give them back (QEMU's fail path).
                for (int i = 0; i < written.size(); i++) {
                    Qcow2BitmapDirectory.Entry w = entry(dir, toStore.get(i).name);
                    if (w != null && w.tableOffset() == written.get(i)[0]) {
                        freeTable(w);
                    }
                }
                throw e;
            }
            for (Qcow2BitmapDirectory.Entry e : drop) {
                freeTable(e);
            }
        } finally {
            meta.unlock();
            lock.unlock();
        }
    }

    /**
     * QEMU's inactivation: stores the bitmaps now and releases the ones
     * stored, so close has nothing left to write. {@code img convert} calls
     * it before its one real flush, so the bitmaps it copied are as durable
     * as the data (qemu-img stores them at close, after which nothing is
     * ever flushed to the disk).
     */
    public void storeAndRelease() throws BlockException {
        lock.lock();
        try {
            store();
            for (var it = list.iterator(); it.hasNext(); ) {
                Qcow2DirtyBitmap b = it.next();
                if (!b.inconsistent) {
                    it.remove();
                    if (b.loaded()) {
                        memory -= b.serializedBytes();
                    }
                }
            }
            refreshActive();
        } finally {
            lock.unlock();
        }
    }

    private static int indexOf(List<Qcow2BitmapDirectory.Entry> dir, String name) {
        for (int i = 0; i < dir.size(); i++) {
            if (dir.get(i).name().equals(name)) {
                return i;
            }
        }
        throw new IllegalStateException("no directory entry for " + name);
    }

    /**
     * QEMU's store_bitmap: a data cluster for each bitmap cluster with a
     * dirty bit, then the table; returns {table offset, table size}.
     */
    private long[] storeBitmap(Qcow2DirtyBitmap b) throws BlockException {
        ensureLoaded(b);
        long cs = g.clusterSize();
        int tableSize = b.tableSize(cs);
        if (tableSize > Qcow2BitmapDirectory.MAX_TABLE_SIZE
                || (long) tableSize * cs > Qcow2BitmapDirectory.MAX_PHYS_SIZE) {
            throw new BlockException(Errno.EINVAL, "Bitmap '" + b.name + "' is too big");
        }
        long[] table = new long[tableSize];
        ByteBuffer buf = ByteBuffer.allocate((int) cs);
        try {
            for (int k = 0; k < tableSize; k++) {
                if (!b.anyInCluster(k, cs)) {
                    continue;
                }
                long off = refcounts.allocate(1, "bitmap data");
                table[k] = off;
                b.serializeCluster(k, buf);
                file.write(off, buf.clear(), 0);
                node.fileGrewTo(off + cs);
            }
            int tableClusters = (int) ((tableSize * 8L + cs - 1) / cs);
            long tableOffset = refcounts.allocate(tableClusters, "bitmap table");
            ByteBuffer tb = ByteBuffer.allocate(tableSize * 8);
            tb.asLongBuffer().put(table);
            file.write(tableOffset, tb, 0);
            node.fileGrewTo(tableOffset + ((long) tableClusters << g.clusterBits()));
            return new long[] {tableOffset, tableSize};
        } catch (BlockException e) {
            for (long off : table) {
                if (off != 0) {
                    refcounts.free(off, cs);
                }
            }
            throw e;
        }
    }

    /**
     * QEMU's update_ext_header_and_dir: the directory goes to new clusters,
     * the caches (refcounts first) reach the file and are flushed, the
     * header switches (autoclear bit set, or cleared with no bitmaps left),
     * then the old directory is freed. Under the metadata lock.
     */
    private void writeDirectory(List<Qcow2BitmapDirectory.Entry> dir) throws BlockException {
        Qcow2Extensions.Bitmaps newExt = null;
        long cs = g.clusterSize();
        if (!dir.isEmpty()) {
            if (dir.size() > MAX_BITMAPS) {
                throw new BlockException(Errno.EINVAL, Errno.EINVAL.text());
            }
            ByteBuffer bytes = Qcow2BitmapDirectory.encode(dir);
            int clusters = (int) ((bytes.capacity() + cs - 1) / cs);
            long offset = refcounts.allocate(clusters, "bitmap directory");
            file.write(offset, bytes, 0);
            node.fileGrewTo(offset + ((long) clusters << g.clusterBits()));
            newExt = new Qcow2Extensions.Bitmaps(dir.size(), bytes.capacity(), offset);
        }
        map.writeDirty();
        refcounts.flush();
        file.flush();
        Qcow2HeaderWriter.changeBitmaps(file, header, newExt);
        file.flush();
        Qcow2Extensions.Bitmaps old = ext;
        ext = newExt;
        directory = List.copyOf(dir);
        if (old != null && old.directorySize() > 0) {
            freeQuietly(old.directoryOffset(), old.directorySize());
        }
    }

    /** QEMU's free_bitmap_clusters: the data clusters its table names, then the table; a bad table leaks. */
    private void freeTable(Qcow2BitmapDirectory.Entry e) throws BlockException {
        long[] table;
        try {
            table = Qcow2BitmapDirectory.loadTable(file, node.fileLength(), e, g.clusterSize());
        } catch (BlockException ex) {
            return;
        }
        for (long t : table) {
            long off = t & Qcow2BitmapDirectory.TABLE_OFFSET;
            if (off != 0) {
                freeQuietly(off, g.clusterSize());
            }
        }
        freeQuietly(e.tableOffset(), Integer.toUnsignedLong(e.tableSize()) * 8);
    }

    /**
     * Frees clusters nothing points at any more. A failure (a damaged image
     * whose old bitmap named clusters with no reference) leaks at worst: it
     * is reported as QEMU's qcow2_free_clusters reports it, and the rest goes on.
     */
    private void freeQuietly(long offset, long length) {
        boolean failed = false;
        Errno why = Errno.EINVAL;
        long cs = g.clusterSize();
        for (long at = offset & -cs; at < offset + length; at += cs) {
            try {
                refcounts.free(at, 1);
            } catch (BlockException e) {
                if (!failed) {
                    try {
                        why = refcounts.covered(at) ? Errno.EINVAL : Errno.EAGAIN;
                    } catch (BlockException ex) {
                        why = ex.errno();
                    }
                }
                failed = true;
            }
        }
        if (failed) {
            System.err.println("qcow2_free_clusters failed: " + why.text());
        }
    }
}
