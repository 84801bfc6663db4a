package io.jblock.format.qcow2;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;

/**
 * One dirty bitmap in memory (QEMU's BdrvDirtyBitmap over an HBitmap): one
 * bit per granule of the virtual disk, set when a write, zero-write or
 * discard touched the granule. Serialized as the qcow2 spec stores bitmap
 * data: granule {@code i} is bit {@code i % 8} of byte {@code i / 8}, which
 * is bit {@code i % 64} of little-endian word {@code i / 64}.
 *
 * <p>State flags as QEMU keeps them: {@code enabled} (tracks writes; the
 * image's "auto" flag), {@code inconsistent} (found "in use" at open: its
 * data is lost and it is only good for removal), and the words, loaded
 * lazily on a read-only image. Every method is called under the owning
 * {@link Qcow2Bitmaps}' lock.
 */
final class Qcow2DirtyBitmap {
    final String name;
    final int granularityBits;
    private long size;
    private long[] words;
    boolean enabled;
    final boolean inconsistent;

    Qcow2DirtyBitmap(String name, int granularityBits, long size, boolean enabled, boolean inconsistent,
                     boolean loaded) {
        this.name = name;
        this.granularityBits = granularityBits;
        this.size = size;
        this.enabled = enabled;
        this.inconsistent = inconsistent;
        this.words = loaded ? new long[wordsFor(size)] : null;
    }

    long granularity() {
        return 1L << granularityBits;
    }

    long size() {
        return size;
    }

    boolean loaded() {
        return words != null;
    }

    /** Granules covering {@code size} bytes. */
    long bits() {
        return bitsFor(size);
    }

    private long bitsFor(long bytes) {
        return (bytes + granularity() - 1) >>> granularityBits;
    }

    private int wordsFor(long bytes) {
        return (int) ((bitsFor(bytes) + 63) >>> 6);
    }

    /** Bytes of serialized bitmap (QEMU rounds to whole 64-bit words). */
    long serializedBytes() {
        return (long) wordsFor(size) * 8;
    }

    /** Bitmap clusters (table entries) for {@code clusterSize}. */
    int tableSize(long clusterSize) {
        return (int) ((serializedBytes() + clusterSize - 1) / clusterSize);
    }

    void setLoaded() {
        if (words == null) {
            words = new long[wordsFor(size)];
        }
    }

    /** Marks every granule that {@code [offset, offset + length)} touches. */
    void setRange(long offset, long length) {
        if (length <= 0 || offset >= size) {
            return;
        }
        long first = offset >>> granularityBits;
        long last = (Math.min(offset + length, size) - 1) >>> granularityBits;
        setBits(first, last);
    }

    private void setBits(long first, long last) {
        int fw = (int) (first >>> 6);
        int lw = (int) (last >>> 6);
        long fm = -1L << (first & 63);
        long lm = -1L >>> (63 - (last & 63));
        if (fw == lw) {
            words[fw] |= fm & lm;
            return;
        }
        words[fw] |= fm;
        for (int w = fw + 1; w < lw; w++) {
            words[w] = -1L;
        }
        words[lw] |= lm;
    }

    boolean get(long bit) {
        return (words[(int) (bit >>> 6)] & (1L << (bit & 63))) != 0;
    }

    void clear() {
        java.util.Arrays.fill(words, 0);
    }

    /** The number of dirty granules. */
    long count() {
        long n = 0;
        for (long w : words) {
            n += Long.bitCount(w);
        }
        return n;
    }

    /** Sets in this bitmap every byte range dirty in {@code src} (granularities may differ), as hbitmap_merge. */
    void merge(Qcow2DirtyBitmap src) {
        long bits = src.bits();
        long bit = src.nextSet(0);
        while (bit >= 0 && bit < bits) {
            long end = Math.min(bits, src.nextClear(bit));
            long start = bit << src.granularityBits;
            setRange(start, Math.min(src.size, end << src.granularityBits) - start);
            bit = src.nextSet(end);
        }
    }

    /** The first set bit at or after {@code from}, or -1. */
    long nextSet(long from) {
        int w = (int) (from >>> 6);
        if (w >= words.length) {
            return -1;
        }
        long word = words[w] & (-1L << (from & 63));
        while (word == 0) {
            if (++w >= words.length) {
                return -1;
            }
            word = words[w];
        }
        return ((long) w << 6) + Long.numberOfTrailingZeros(word);
    }

    /** The first clear bit at or after {@code from} (may be past the last granule). */
    long nextClear(long from) {
        int w = (int) (from >>> 6);
        if (w >= words.length) {
            return from;
        }
        long word = ~words[w] & (-1L << (from & 63));
        while (word == 0) {
            if (++w >= words.length) {
                return (long) words.length << 6;
            }
            word = ~words[w];
        }
        return ((long) w << 6) + Long.numberOfTrailingZeros(word);
    }

    /** Whether any bit of bitmap cluster {@code k} is set. */
    boolean anyInCluster(int k, long clusterSize) {
        int per = (int) (clusterSize / 8);
        int from = k * per;
        int to = Math.min(words.length, from + per);
        for (int w = from; w < to; w++) {
            if (words[w] != 0) {
                return true;
            }
        }
        return false;
    }

    /** Bitmap cluster {@code k} as stored: {@code clusterSize} bytes, zero past the bitmap's end. */
    void serializeCluster(int k, ByteBuffer cluster) {
        int per = cluster.capacity() / 8;
        int from = k * per;
        int n = Math.min(words.length - from, per);
        java.util.Arrays.fill(cluster.array(), (byte) 0);
        LongBuffer lb = cluster.clear().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
        lb.put(words, from, n);
        cluster.order(ByteOrder.BIG_ENDIAN);
    }

    /** Loads bitmap cluster {@code k} from its stored bytes; bits past the end are dropped. */
    void deserializeCluster(int k, ByteBuffer cluster) {
        int per = cluster.capacity() / 8;
        int from = k * per;
        int n = Math.min(words.length - from, per);
        cluster.clear().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(words, from, n);
        cluster.order(ByteOrder.BIG_ENDIAN);
        maskTail();
    }

    /** Sets every bit of bitmap cluster {@code k} (a table entry "all ones"). */
    void fillCluster(int k, long clusterSize) {
        int per = (int) (clusterSize / 8);
        int from = k * per;
        int to = Math.min(words.length, from + per);
        java.util.Arrays.fill(words, from, to, -1L);
        maskTail();
    }

    private void maskTail() {
        long bits = bits();
        int tail = (int) (bits & 63);
        if (tail != 0 && words.length > 0) {
            words[words.length - 1] &= -1L >>> (64 - tail);
        }
    }

    /** The virtual size changed: granules past the new end are dropped, new ones are clean (hbitmap_truncate). */
    void resize(long newSize) {
        size = newSize;
        if (words != null) {
            words = java.util.Arrays.copyOf(words, wordsFor(newSize));
            maskTail();
        }
    }
}
