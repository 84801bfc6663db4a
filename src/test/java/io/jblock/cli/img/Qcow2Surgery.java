package io.jblock.cli.img;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;

/**
 * Hex edits of a qcow2 image, the way QEMU's iotests 060, 061, 080, 108 and
 * 112 damage images with poke_file: header fields, L1 and L2 entries,
 * refcount table entries and refcounts (of any width), found by following
 * the image's own tables.
 */
final class Qcow2Surgery implements AutoCloseable {
    private final RandomAccessFile f;

    Qcow2Surgery(Path image) throws IOException {
        f = new RandomAccessFile(image.toFile(), "rw");
    }

    long u64(long at) throws IOException {
        f.seek(at);
        return f.readLong();
    }

    int u32(long at) throws IOException {
        f.seek(at);
        return f.readInt();
    }

    void put64(long at, long v) throws IOException {
        f.seek(at);
        f.writeLong(v);
    }

    void put32(long at, int v) throws IOException {
        f.seek(at);
        f.writeInt(v);
    }

    int clusterBits() throws IOException {
        return u32(20);
    }

    long clusterSize() throws IOException {
        return 1L << clusterBits();
    }

    long l1Offset() throws IOException {
        return u64(40);
    }

    long reftableOffset() throws IOException {
        return u64(48);
    }

    int refcountOrder() throws IOException {
        return u32(4) == 3 ? u32(96) : 4;
    }

    long l1Entry(int i) throws IOException {
        return u64(l1Offset() + 8L * i);
    }

    void setL1Entry(int i, long v) throws IOException {
        put64(l1Offset() + 8L * i, v);
    }

    long l2Offset(int l1Index) throws IOException {
        return l1Entry(l1Index) & 0x00fffffffffffe00L;
    }

    long l2Entry(int i) throws IOException {
        return u64(l2Offset(0) + 8L * i);
    }

    void setL2Entry(int i, long v) throws IOException {
        put64(l2Offset(0) + 8L * i, v);
    }

    /** Host cluster of a standard L2 entry of the first L2 table. */
    long dataCluster(int l2Index) throws IOException {
        return (l2Entry(l2Index) & 0x00fffffffffffe00L) >>> clusterBits();
    }

    void setReftableEntry(int i, long v) throws IOException {
        put64(reftableOffset() + 8L * i, v);
    }

    long reftableEntry(int i) throws IOException {
        return u64(reftableOffset() + 8L * i);
    }

    /** Writes the stored refcount of {@code cluster} directly into its refcount block. */
    void setRefcount(long cluster, long value) throws IOException {
        int order = refcountOrder();
        int bits = 1 << order;
        long perBlock = clusterSize() * 8 / bits;
        long block = reftableEntry((int) (cluster / perBlock)) & ~0x1ffL;
        long index = cluster % perBlock;
        if (bits >= 8) {
            long at = block + index * bits / 8;
            for (int k = bits / 8 - 1; k >= 0; k--) {
                f.seek(at + k);
                f.write((int) value);
                value >>>= 8;
            }
        } else {
            long bit = index * bits;
            f.seek(block + bit / 8);
            int b = f.read();
            int mask = ((1 << bits) - 1) << (bit % 8);
            b = (b & ~mask) | (((int) value << (bit % 8)) & mask);
            f.seek(block + bit / 8);
            f.write(b);
        }
    }

    long length() throws IOException {
        return f.length();
    }

    @Override
    public void close() throws IOException {
        f.close();
    }
}
