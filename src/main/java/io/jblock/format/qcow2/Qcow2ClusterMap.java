package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

import io.jblock.block.DebugEvent;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Guest offset to host offset: the L1 table (read whole at open) and L2 tables
 * (read in slices of at most 4 KiB, kept in a bounded write-back LRU cache).
 *
 * <p>Write side: L2 entries change in the cache and reach the file on
 * {@link #writeDirty()} (a flush, or a free that must be in the file before
 * its refcount drops) or when evicted. Every L2 or L1 write is preceded by
 * {@link Qcow2Refcounts#flush()}, so a refcount block reaches the file before
 * any table that references a cluster it counts (QEMU's cache dependency).
 *
 * <p>Not thread-safe: the image's metadata lock guards every call.
 */
final class Qcow2ClusterMap {
    /** Slices are at most a page, as QEMU's default l2-cache-entry-size keeps reads small. */
    private static final int MAX_SLICE_BYTES = 4096;
    /** 1 MiB of cached L2 slices, QEMU's default L2 cache size on Linux. */
    private static final int CACHE_BYTES = 1 << 20;

    /** Header offset of l1_size (u32), followed by l1_table_offset (u64). */
    private static final int HEADER_L1_FIELDS = 36;

    private final Qcow2Geometry g;
    private final BlockNode file;
    private volatile long fileLength;
    private long[] l1;
    private long l1Offset;
    private final int sliceBytes;
    private final int sliceEntries;
    /** Slices by file offset, least recently used first; put and remove also drop the memo below. */
    private final SliceCache cache;
    /**
     * The slice found last, and where it is: consecutive requests mostly land
     * in one slice, and this spares them the boxed key and the LRU relinking.
     * Always in {@link #cache}: cleared wherever a slice leaves it (the cache's put and remove
     * go through {@link #forgetLast}).
     */
    private long lastAt = -1;
    private Slice lastSlice;
    private final int capacity;
    /** What {@link #find} found last (valid under the metadata lock, until the next find). */
    private Qcow2L2Entry.Type foundType;
    private long foundHost;
    private long foundEntry;
    /** Set when the image is opened read-write: where new clusters come from. */
    private Qcow2Refcounts refcounts;
    private boolean lazyRefcounts;

    /** One cached L2 slice: its entries (two words each with extended L2) and whether the file is behind. */
    static final class Slice {
        final long[] words;
        boolean dirty;
        /** Where the slice is in the file: the cache's key. */
        private long at;
        /** The cache's links: the next slice in its hash bucket, and its neighbours in the LRU order. */
        private Slice hashNext;
        private Slice older;
        private Slice newer;

        Slice(long[] words) {
            this.words = words;
        }
    }

    /**
     * The L2 cache's map: file offset to slice, in least-recently-used order,
     * with the keys, bucket chains and LRU links inside the slices
     * themselves, so that finding, touching, adding and dropping a slice
     * allocate nothing (a map keyed by {@code Long} boxed a key per lookup).
     */
    private final class SliceCache {
        private final Slice[] buckets;
        /** The LRU list's sentinel: {@code lru.newer} is the least recently used slice, {@code lru.older} the most. */
        private final Slice lru = new Slice(null);
        private int size;

        SliceCache(int capacity) {
            buckets = new Slice[Integer.highestOneBit(Math.max(16, capacity * 2 - 1)) << 1];
            lru.newer = lru;
            lru.older = lru;
        }

        private int bucket(long at) {
            long h = at * 0x9E3779B97F4A7C15L;
            return (int) (h >>> 40) & (buckets.length - 1);
        }

        /** The slice at {@code at}, made the most recently used; null when it is not cached. */
        Slice get(long at) {
            for (Slice s = buckets[bucket(at)]; s != null; s = s.hashNext) {
                if (s.at == at) {
                    touch(s);
                    return s;
                }
            }
            return null;
        }

        /** Makes a cached slice the most recently used. */
        void touch(Slice s) {
            if (lru.older != s) {
                unlinkLru(s);
                linkNewest(s);
            }
        }

        /** Caches {@code s} at {@code at} as the most recently used, replacing what was there. */
        void put(long at, Slice s) {
            remove(at);
            s.at = at;
            int b = bucket(at);
            s.hashNext = buckets[b];
            buckets[b] = s;
            linkNewest(s);
            size++;
        }

        /** Drops the slice at {@code at}, if cached. */
        void remove(long at) {
            forgetLast(at);
            int b = bucket(at);
            Slice prev = null;
            for (Slice s = buckets[b]; s != null; prev = s, s = s.hashNext) {
                if (s.at == at) {
                    if (prev == null) {
                        buckets[b] = s.hashNext;
                    } else {
                        prev.hashNext = s.hashNext;
                    }
                    s.hashNext = null;
                    unlinkLru(s);
                    size--;
                    return;
                }
            }
        }

        int size() {
            return size;
        }

        /** The least recently used slice, or null. */
        Slice eldest() {
            return lru.newer == lru ? null : lru.newer;
        }

        /** The slice used next after {@code s} in LRU order (from {@link #eldest}), or null. */
        Slice newer(Slice s) {
            return s.newer == lru ? null : s.newer;
        }

        private void unlinkLru(Slice s) {
            s.older.newer = s.newer;
            s.newer.older = s.older;
        }

        private void linkNewest(Slice s) {
            s.older = lru.older;
            s.newer = lru;
            lru.older.newer = s;
            lru.older = s;
        }
    }

    /** Where one guest cluster's L2 entry sits in the cache: {@code slice.words[index]} (and the bitmap after it). */
    record Slot(Slice slice, int index) {
        long entry() {
            return slice.words[index];
        }

        long bitmap(Qcow2Geometry g) {
            return g.extendedL2() ? slice.words[index + 1] : 0;
        }
    }

    /** A run of guest bytes that all read the same way. */
    record Extent(Qcow2L2Entry.Type type, long hostOffset, long length, long entry) {
    }

    Qcow2ClusterMap(Qcow2Geometry g, BlockNode file, long fileLength, long[] l1, long l1Offset) {
        this.g = g;
        this.file = file;
        this.fileLength = fileLength;
        this.l1 = l1;
        this.l1Offset = l1Offset;
        this.sliceBytes = (int) Math.min(g.clusterSize(), MAX_SLICE_BYTES);
        this.sliceEntries = sliceBytes / g.l2EntrySize();
        this.capacity = Math.max(4, CACHE_BYTES / sliceBytes);
        this.cache = new SliceCache(capacity);
    }

    /**
     * Writes dirty refcount blocks before a table that may reference what they
     * count; skipped while the image is dirty with lazy refcounts, where QEMU
     * drops that ordering too (the refcounts are rebuilt after a crash).
     */
    private void refcountsFirst() throws BlockException {
        if (!lazyRefcounts && refcounts.needsBarrier()) {
            refcounts.flush();
            // Written first is not enough against a power cut: the file's flush keeps the table from reaching
            // the disk before the counts (QEMU flushes the file when the L2 cache's dependency is flushed; a
            // file with no-flush skips the trip to the medium, as there). Blocks written earlier (evicted, or
            // before a flush that failed) need it too: only a flush that worked lets the table go.
            file.flush();
            refcounts.barrierDone();
        }
    }

    /** Lazy refcounts are in force (the dirty bit is set in the file): no ordering before table writes. */
    void setLazyRefcounts(boolean lazy) {
        this.lazyRefcounts = lazy;
    }

    /** Makes the map writable: new L2 tables and L1 tables are allocated through {@code refcounts}. */
    void enableWrites(Qcow2Refcounts refcounts) {
        this.refcounts = refcounts;
    }

    void fileGrew(long length) {
        if (length > fileLength) {
            fileLength = length;
        }
    }

    long l1Offset() {
        return l1Offset;
    }

    int l1Size() {
        return l1.length;
    }

    /** The active L1 table (a copy), for the overlap check and for snapshots. */
    long[] l1Copy() {
        return l1.clone();
    }

    /**
     * How the bytes from {@code offset} read, for at most {@code max} bytes:
     * a run of one type that stops at the end of an L2 slice, and, for data,
     * where the host offsets stop being contiguous. A compressed run is
     * always inside one cluster.
     */
    Extent lookup(long offset, long max) throws BlockException {
        long length = find(offset, max);
        return new Extent(foundType, foundHost, length, foundEntry);
    }

    /**
     * {@link #lookup} without an object per call, for the request paths:
     * returns the run's length and leaves its type, host offset and first
     * entry in {@link #foundType()}, {@link #foundHost()} and
     * {@link #foundEntry()}, which the caller reads before it lets the
     * metadata lock go (the next call overwrites them).
     */
    long find(long offset, long max) throws BlockException {
        long clusterOffset = offset & (g.clusterSize() - 1);
        int scShift = g.subclusterBits();
        long l1Index = offset >>> (g.clusterBits() + g.l2Bits());
        long l2Span = 1L << (g.clusterBits() + g.l2Bits());
        if (l1Index >= l1.length || (l1[(int) l1Index] & Qcow2L2Entry.OFFSET_MASK) == 0) {
            long toEnd = l2Span - (offset & (l2Span - 1));
            return found(Qcow2L2Entry.Type.UNALLOCATED_PLAIN, 0, Math.min(max, toEnd), 0);
        }
        long l2Offset = checkedL2Offset((int) l1Index);
        int l2Index = (int) ((offset >>> g.clusterBits()) & (g.l2Entries() - 1));
        int sliceIndex = l2Index / sliceEntries;
        long[] slice = slice(l2Offset + (long) sliceIndex * sliceBytes).words;
        int i = l2Index % sliceEntries;
        int sc = (int) (clusterOffset >>> scShift);

        Qcow2L2Entry.Type firstType = null;
        long firstHost = 0;
        long firstEntry = 0;
        int firstIndex = i;
        long length = 0;
        long expectedHost = 0;
        long pos = offset;
        while (length < max && i < sliceEntries) {
            long entry = slice[i * g.l2EntryWords()];
            long bitmap = g.extendedL2() ? slice[i * 2 + 1] : 0;
            Qcow2L2Entry.Type type = Qcow2L2Entry.type(entry, bitmap, sc, g.extendedL2(), g.externalData());
            long host = 0;
            switch (type) {
                case INVALID -> throw new BlockException.Corrupt("Invalid cluster entry found (L2 offset: "
                        + hex(l2Offset) + ", L2 index: "
                        + hex(sliceIndex * sliceEntries + i) + ")");
                case NORMAL, ZERO_ALLOC, UNALLOCATED_ALLOC -> {
                    long cluster = entry & Qcow2L2Entry.OFFSET_MASK;
                    if ((cluster & (g.clusterSize() - 1)) != 0) {
                        throw new BlockException.Corrupt("Cluster allocation offset " + hex(cluster)
                                + " unaligned (L2 offset: " + hex(l2Offset) + ", L2 index: "
                                + hex(sliceIndex * sliceEntries + i) + ")");
                    }
                    host = cluster + (pos & (g.clusterSize() - 1));
                }
                case ZERO_PLAIN, UNALLOCATED_PLAIN -> {
                }
                case COMPRESSED -> {
                    if (g.externalData()) {
                        throw new BlockException.Corrupt("Compressed cluster entry found in image with "
                                + "external data file (guest offset: " + hex(pos) + ")");
                    }
                }
            }
            if (type.isZero() && !g.zeroClustersAllowed()) {
                throw new BlockException.Corrupt("Zero cluster entry found in pre-v3 image (guest offset: "
                        + hex(pos) + ", L2 index: "
                        + hex(sliceIndex * sliceEntries + i) + ")");
            }
            if (firstType == null) {
                firstType = type;
                firstHost = host;
                firstEntry = entry;
                expectedHost = host;
            } else if (type != firstType || (type == Qcow2L2Entry.Type.COMPRESSED && i != firstIndex)
                    || (type == Qcow2L2Entry.Type.NORMAL && host != expectedHost)) {
                break;
            }
            long step = g.subclusterSize() - (pos & (g.subclusterSize() - 1));
            step = Math.min(step, max - length);
            length += step;
            pos += step;
            expectedHost += step;
            if (++sc == g.subclustersPerCluster()) {
                sc = 0;
                i++;
            }
        }
        return found(firstType, firstHost, length, firstEntry);
    }

    private long found(Qcow2L2Entry.Type type, long host, long length, long entry) {
        foundType = type;
        foundHost = host;
        foundEntry = entry;
        return length;
    }

    /** The type of the run {@link #find} found last. */
    Qcow2L2Entry.Type foundType() {
        return foundType;
    }

    /** Where the run {@link #find} found last starts in the data file (0 where it has no host cluster). */
    long foundHost() {
        return foundHost;
    }

    /** The L2 entry of the first cluster of the run {@link #find} found last. */
    long foundEntry() {
        return foundEntry;
    }

    /** C's {@code %#x}, as QEMU prints offsets and indexes in its corruption messages: 0 has no 0x. */
    static String hex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }

    private long checkedL2Offset(int l1Index) throws BlockException {
        long l2Offset = l1[l1Index] & Qcow2L2Entry.OFFSET_MASK;
        if ((l2Offset & (g.clusterSize() - 1)) != 0) {
            throw new BlockException.Corrupt("L2 table offset " + hex(l2Offset)
                    + " unaligned (L1 index: " + hex(l1Index) + ")");
        }
        if (l2Offset > fileLength - g.clusterSize()) {
            throw new BlockException.Corrupt("L2 table offset " + hex(l2Offset)
                    + " (L1 index: " + hex(l1Index)
                    + ") is past the end of the image file (length " + fileLength + ")");
        }
        return l2Offset;
    }

    private Slice slice(long at) throws BlockException {
        if (at == lastAt) {
            return lastSlice;
        }
        if (lastSlice != null) {
            // The slice served from the memo was in use until now: it becomes the most recently used again.
            cache.touch(lastSlice);
        }
        Slice s = cache.get(at);
        if (s != null) {
            lastAt = at;
            lastSlice = s;
            return s;
        }
        file.debugEvent(DebugEvent.L2_LOAD);
        ByteBuffer b = ByteBuffer.allocate(sliceBytes);
        file.read(at, b);
        long[] w = new long[sliceBytes / 8];
        b.flip();
        b.asLongBuffer().get(w);
        s = new Slice(w);
        cache.put(at, s);
        trim();
        if (cache.get(at) == s) {
            lastAt = at;
            lastSlice = s;
        }
        return s;
    }

    /** Drops the memo of {@link #slice} when the slice at {@code at} leaves (or is replaced in) the cache. */
    private void forgetLast(long at) {
        if (at == lastAt) {
            lastAt = -1;
            lastSlice = null;
        }
    }

    /** Keeps the cache within its bound; a dirty slice leaving it is written first (refcounts before it). */
    void trim() throws BlockException {
        if (cache.size() <= capacity) {
            return;
        }
        boolean refcountsWritten = false;
        while (cache.size() > capacity) {
            Slice e = cache.eldest();
            if (e.dirty) {
                if (!refcountsWritten) {
                    refcountsFirst();
                    refcountsWritten = true;
                }
                writeSlice(e.at, e);
            }
            cache.remove(e.at);
        }
    }

    private void writeSlice(long at, Slice s) throws BlockException {
        file.debugEvent(DebugEvent.L2_UPDATE);
        ByteBuffer b = ByteBuffer.allocate(sliceBytes);
        b.asLongBuffer().put(s.words);
        file.write(at, b, 0);
        s.dirty = false;
    }

    /** Writes every dirty slice to the file, after the refcount blocks. */
    void writeDirty() throws BlockException {
        if (!hasDirty()) {
            return;
        }
        refcountsFirst();
        for (Slice s = cache.eldest(); s != null; s = cache.newer(s)) {
            if (s.dirty) {
                writeSlice(s.at, s);
            }
        }
    }

    boolean hasDirty() {
        for (Slice s = cache.eldest(); s != null; s = cache.newer(s)) {
            if (s.dirty) {
                return true;
            }
        }
        return false;
    }

    // ---------------------------------------------------------------- writes

    /**
     * Where the entry of the cluster at {@code guest} sits in its slice's
     * {@link Slice#words} (the extended L2 bitmap is the word after it).
     */
    int wordIndex(long guest) {
        int l2Index = (int) ((guest >>> g.clusterBits()) & (g.l2Entries() - 1));
        return (l2Index % sliceEntries) * g.l2EntryWords();
    }

    /** The L2 slot of the cluster at {@code guest}, or null when its L2 table does not exist. */
    Slot slotIfPresent(long guest) throws BlockException {
        int l1Index = (int) (guest >>> (g.clusterBits() + g.l2Bits()));
        if (l1Index >= l1.length || (l1[l1Index] & Qcow2L2Entry.OFFSET_MASK) == 0) {
            return null;
        }
        return slot(checkedL2Offset(l1Index), guest);
    }

    /** The slot of entry {@code l2Index} of the L2 table at {@code l2Offset} (any table: active or a snapshot's). */
    Slot slotInTable(long l2Offset, int l2Index) throws BlockException {
        int sliceIndex = l2Index / sliceEntries;
        Slice s = slice(l2Offset + (long) sliceIndex * sliceBytes);
        return new Slot(s, (l2Index % sliceEntries) * g.l2EntryWords());
    }

    private Slot slot(long l2Offset, long guest) throws BlockException {
        return new Slot(sliceOf(l2Offset, guest), wordIndex(guest));
    }

    private Slice sliceOf(long l2Offset, long guest) throws BlockException {
        int l2Index = (int) ((guest >>> g.clusterBits()) & (g.l2Entries() - 1));
        int sliceIndex = l2Index / sliceEntries;
        return slice(l2Offset + (long) sliceIndex * sliceBytes);
    }

    /**
     * The L2 slot of the cluster at {@code guest} in a table this image owns
     * alone (COPIED in L1): allocates the table, or copies a shared one
     * (QEMU's l2_allocate), when it is not.
     */
    Slot slotForWrite(long guest) throws BlockException {
        return new Slot(sliceForWrite(guest), wordIndex(guest));
    }

    /**
     * {@link #slotForWrite} without an object per call: the cached slice that
     * holds the entry of {@code guest} at {@link #wordIndex}, in a table this
     * image owns alone. Good until the next call on this map (which may evict it).
     */
    Slice sliceForWrite(long guest) throws BlockException {
        int l1Index = (int) (guest >>> (g.clusterBits() + g.l2Bits()));
        if (l1Index < l1.length) {
            long l1Entry = l1[l1Index];
            if ((l1Entry & Qcow2L2Entry.COPIED) != 0 && (l1Entry & Qcow2L2Entry.OFFSET_MASK) != 0) {
                return sliceOf(checkedL2Offset(l1Index), guest);
            }
        }
        return slotForNewTable(guest).slice();
    }

    private Slot slotForNewTable(long guest) throws BlockException {
        int l1Index = (int) (guest >>> (g.clusterBits() + g.l2Bits()));
        if (l1Index >= l1.length) {
            growL1(l1Index + 1L, false);
        }
        long l1Entry = l1[l1Index];
        if ((l1Entry & Qcow2L2Entry.COPIED) != 0 && (l1Entry & Qcow2L2Entry.OFFSET_MASK) != 0) {
            return slot(checkedL2Offset(l1Index), guest);
        }
        long old = l1Entry & Qcow2L2Entry.OFFSET_MASK;
        if (old != 0) {
            checkedL2Offset(l1Index);
        }
        long l2 = refcounts.allocate(1, "active L2 table");
        if (old != 0) {
            file.debugEvent(DebugEvent.L2_ALLOC_COW_READ);
        }
        ByteBuffer table = ByteBuffer.allocate((int) g.clusterSize());
        if (old != 0) {
            // A table shared with a snapshot: the copy starts with its entries (the cached slices are current).
            for (long at = 0; at < g.clusterSize(); at += sliceBytes) {
                Slice s = cache.get(old + at);
                if (s != null) {
                    ByteBuffer part = ByteBuffer.allocate(sliceBytes);
                    part.asLongBuffer().put(s.words);
                    table.put((int) at, part, 0, sliceBytes);
                } else {
                    file.read(old + at, table.duplicate().position((int) at).limit((int) (at + sliceBytes)));
                }
            }
        }
        try {
            // As QEMU's L2 allocation: the whole L2 cache is written with the new table (so a failing L2 write
            // fails this request too), and the file is flushed before the L1 entry points at the table, so a
            // power cut cannot keep the entry without the table.
            writeDirty();
            refcountsFirst();
            file.debugEvent(DebugEvent.L2_ALLOC_WRITE);
            file.write(l2, table.duplicate().clear(), 0);
            fileGrew(l2 + g.clusterSize());
            file.flush();
            writeL1Entry(l1Index, l2 | Qcow2L2Entry.COPIED);
        } catch (BlockException e) {
            // The new table is not in use: give its cluster back rather than leak it (QEMU does the same).
            refcounts.free(l2, g.clusterSize());
            throw e;
        }
        if (old != 0) {
            for (long at = 0; at < g.clusterSize(); at += sliceBytes) {
                cache.remove(old + at);
            }
            refcounts.free(old, g.clusterSize());
        }
        for (long at = 0; at < g.clusterSize(); at += sliceBytes) {
            long[] w = new long[sliceBytes / 8];
            table.duplicate().position((int) at).limit((int) (at + sliceBytes)).slice().asLongBuffer().get(w);
            cache.put(l2 + at, new Slice(w));
        }
        trim();
        return slot(l2, guest);
    }

    /** Whether the L2 table of {@code guest} exists and belongs to this image alone (COPIED in L1). */
    boolean l2Owned(long guest) {
        int l1Index = (int) (guest >>> (g.clusterBits() + g.l2Bits()));
        return l1Index < l1.length && (l1[l1Index] & Qcow2L2Entry.COPIED) != 0
                && (l1[l1Index] & Qcow2L2Entry.OFFSET_MASK) != 0;
    }

    /** Whether {@code [offset, offset + length)} overlaps an active L2 table (the overlap check). */
    boolean overlapsL2(long offset, long length) {
        for (long e : l1) {
            long l2 = e & Qcow2L2Entry.OFFSET_MASK;
            if (l2 != 0 && l2 < offset + length && offset < l2 + g.clusterSize()) {
                return true;
            }
        }
        return false;
    }

    /** Drops the cached slices of an L2 table that is being freed (whatever they held no longer matters). */
    void forget(long l2Offset) {
        for (long at = 0; at < g.clusterSize(); at += sliceBytes) {
            cache.remove(l2Offset + at);
        }
    }

    /** Changes one L2 entry in the cache. */
    void set(Slot slot, long entry, long bitmap) {
        slot.slice.words[slot.index] = entry;
        if (g.extendedL2()) {
            slot.slice.words[slot.index + 1] = bitmap;
        }
        slot.slice.dirty = true;
    }

    /**
     * Points {@code count} consecutive clusters from {@code guest} (all in one
     * slice) at consecutive host clusters from {@code host}, with COPIED and
     * {@code bitmap}: one slice found, one slice dirtied.
     */
    void setRun(long guest, int count, long host, long bitmap) throws BlockException {
        Slice s = sliceForWrite(guest);
        int w = wordIndex(guest);
        int step = g.l2EntryWords();
        if (w + (count - 1) * step >= s.words.length) {
            throw new IllegalArgumentException("run of " + count + " clusters at " + hex(guest)
                    + " crosses the end of its L2 slice");
        }
        long cs = g.clusterSize();
        for (int i = 0; i < count; i++) {
            s.words[w + i * step] = (host + i * cs) | Qcow2L2Entry.COPIED;
            if (step == 2) {
                s.words[w + i * step + 1] = bitmap;
            }
        }
        s.dirty = true;
    }

    /** Changes one L2 entry in a slice from {@link #sliceForWrite}. */
    void set(Slice slice, int word, long entry, long bitmap) {
        slice.words[word] = entry;
        if (g.extendedL2()) {
            slice.words[word + 1] = bitmap;
        }
        slice.dirty = true;
    }

    /** Writes one L1 entry; refcount blocks first, since the entry may point at a new L2 table. */
    void writeL1Entry(int index, long entry) throws BlockException {
        refcountsFirst();
        file.debugEvent(DebugEvent.L1_UPDATE);
        file.write(l1Offset + index * 8L, ByteBuffer.allocate(8).putLong(0, entry), 0);
        l1[index] = entry;
    }

    /** Reads now go through {@code entries} (a snapshot's L1 table, on a read-only image); nothing is written. */
    void loadL1(long[] entries) {
        l1 = entries.clone();
    }

    /**
     * Overwrites the whole active L1 table in place with {@code entries}
     * (applying a snapshot; the table keeps its length, missing entries are
     * zero): refcount blocks first, as for any L1 write.
     */
    void replaceL1(long[] entries) throws BlockException {
        long[] fresh = new long[l1.length];
        System.arraycopy(entries, 0, fresh, 0, Math.min(entries.length, fresh.length));
        refcountsFirst();
        file.debugEvent(DebugEvent.L1_UPDATE);
        ByteBuffer b = ByteBuffer.allocate(fresh.length * 8);
        b.asLongBuffer().put(fresh);
        if (fresh.length > 0) {
            file.write(l1Offset, b, 0);
        }
        l1 = fresh;
    }

    /**
     * Grows the L1 table to at least {@code minSize} entries (exactly, or by
     * QEMU's factor of 1.5): the new table is written, then the header points
     * at it, then the old one is freed.
     */
    void growL1(long minSize, boolean exact) throws BlockException {
        if (minSize <= l1.length) {
            return;
        }
        long size = minSize;
        if (!exact) {
            size = Math.max(1, l1.length);
            while (size < minSize) {
                size = (size * 3 + 1) / 2;
            }
        }
        if (size > Qcow2Limits.MAX_L1_BYTES / 8) {
            if (minSize > Qcow2Limits.MAX_L1_BYTES / 8) {
                throw new BlockException(Errno.EFBIG, "L1 table would grow past "
                        + Qcow2Limits.MAX_L1_BYTES + " bytes");
            }
            size = Qcow2Limits.MAX_L1_BYTES / 8;
        }
        long bytes = ((size * 8 + g.clusterSize() - 1) >>> g.clusterBits()) << g.clusterBits();
        file.debugEvent(DebugEvent.L1_GROW_ALLOC_TABLE);
        long at = refcounts.allocate((int) (bytes >>> g.clusterBits()), "active L1 table");
        long[] grown = new long[(int) size];
        System.arraycopy(l1, 0, grown, 0, l1.length);
        ByteBuffer b = ByteBuffer.allocate((int) bytes);
        b.asLongBuffer().put(grown);
        refcountsFirst();
        file.debugEvent(DebugEvent.L1_GROW_WRITE_TABLE);
        file.write(at, b, 0);
        fileGrew(at + bytes);
        file.debugEvent(DebugEvent.L1_GROW_ACTIVATE_TABLE);
        file.write(HEADER_L1_FIELDS, ByteBuffer.allocate(12).putInt(0, (int) size).putLong(4, at), 0);
        long oldOffset = l1Offset;
        long oldBytes = (long) l1.length * 8;
        l1 = grown;
        l1Offset = at;
        if (oldBytes > 0) {
            refcounts.free(oldOffset, oldBytes);
        }
    }

    int capacity() {
        return capacity;
    }

    /** How many clusters from {@code guest} to the end of its L2 slice. */
    int clustersToSliceEnd(long guest) {
        int l2Index = (int) ((guest >>> g.clusterBits()) & (g.l2Entries() - 1));
        return sliceEntries - l2Index % sliceEntries;
    }

    /** How many L2 slices are cached now (for tests of the bound). */
    int cachedSlices() {
        return cache.size();
    }

    /** The offsets of all cached slices, for tests. */
    List<Long> cachedSliceOffsets() {
        List<Long> at = new ArrayList<>();
        for (Slice s = cache.eldest(); s != null; s = cache.newer(s)) {
            at.add(s.at);
        }
        return at;
    }
}
