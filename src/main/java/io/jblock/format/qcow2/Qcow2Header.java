package io.jblock.format.qcow2;

import io.jblock.block.BlockException;

import java.nio.ByteBuffer;

/**
 * The qcow2 header (docs/interop/qcow2.txt), decoded and checked the way
 * QEMU 7.2's qcow2_do_open checks an untrusted image, in its order and with
 * its messages. All fields are big-endian:
 *
 * <pre>
 *   0  magic "QFI\xfb"             4  version (2 or 3)
 *   8  backing_file_offset (u64)  16  backing_file_size (u32)
 *  20  cluster_bits (u32)         24  size (u64, virtual size)
 *  32  crypt_method (u32)         36  l1_size (u32)
 *  40  l1_table_offset (u64)      48  refcount_table_offset (u64)
 *  56  refcount_table_clusters    60  nb_snapshots (u32)
 *  64  snapshots_offset (u64)
 *  --- version 3 only ---
 *  72  incompatible_features      80  compatible_features
 *  88  autoclear_features         96  refcount_order (u32)
 * 100  header_length (u32)       104  compression_type (u8, when header_length > 104)
 * </pre>
 *
 * Header extensions follow, up to the backing file name or the end of the
 * first cluster ({@link Qcow2Extensions}).
 */
record Qcow2Header(
        int version,
        long backingFileOffset,
        int backingFileSize,
        int clusterBits,
        long size,
        int cryptMethod,
        int l1Size,
        long l1TableOffset,
        long refcountTableOffset,
        int refcountTableClusters,
        int snapshotCount,
        long snapshotsOffset,
        long incompatibleFeatures,
        long compatibleFeatures,
        long autoclearFeatures,
        int refcountOrder,
        int headerLength,
        int compressionType) {

    static final int MAGIC = 0x514649fb;
    /** The bytes of a version 2 header, and where a version 3 header's extra fields start. */
    static final int V2_HEADER_LENGTH = 72;
    /** The shortest version 3 header: everything up to and including header_length. */
    static final int V3_MIN_HEADER_LENGTH = 104;

    static final int MIN_CLUSTER_BITS = 9;
    /** 2 MiB clusters: QEMU's limit, so an L2 table or a compressed cluster stays a sane allocation. */
    static final int MAX_CLUSTER_BITS = 21;

    static final long INCOMPAT_DIRTY = 1L;
    static final long INCOMPAT_CORRUPT = 1L << 1;
    static final long INCOMPAT_DATA_FILE = 1L << 2;
    static final long INCOMPAT_COMPRESSION = 1L << 3;
    static final long INCOMPAT_EXTL2 = 1L << 4;
    /** Every incompatible feature QEMU 7.2 (and so jblock) understands. */
    static final long INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE
            | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

    static final long COMPAT_LAZY_REFCOUNTS = 1L;

    static final long AUTOCLEAR_BITMAPS = 1L;
    static final long AUTOCLEAR_DATA_FILE_RAW = 1L << 1;

    static final int COMPRESSION_ZLIB = 0;
    static final int COMPRESSION_ZSTD = 1;

    static final int CRYPT_NONE = 0;
    static final int CRYPT_AES = 1;
    static final int CRYPT_LUKS = 2;

    /** Reads the fixed part of the header from the image's first 112 bytes, zero padded past its end. */
    static Qcow2Header decode(ByteBuffer b) throws BlockException {
        if (b.getInt(0) != MAGIC) {
            throw new BlockException.Unsupported("Image is not in qcow2 format");
        }
        int version = b.getInt(4);
        if (version < 2 || version > 3) {
            throw new BlockException.Unsupported("Unsupported qcow2 version " + version);
        }
        int clusterBits = b.getInt(20);
        if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
            throw new BlockException.Corrupt("Unsupported cluster size: 2^" + clusterBits);
        }
        long incompatible = 0;
        long compatible = 0;
        long autoclear = 0;
        int refcountOrder = 4;
        int headerLength = V2_HEADER_LENGTH;
        int compressionType = COMPRESSION_ZLIB;
        if (version == 3) {
            incompatible = b.getLong(72);
            compatible = b.getLong(80);
            autoclear = b.getLong(88);
            refcountOrder = b.getInt(96);
            headerLength = b.getInt(100);
            if (Integer.compareUnsigned(headerLength, V3_MIN_HEADER_LENGTH) < 0) {
                throw new BlockException.Corrupt("qcow2 header too short");
            }
            if (Integer.toUnsignedLong(headerLength) > (1L << clusterBits)) {
                throw new BlockException.Corrupt("qcow2 header exceeds cluster size");
            }
            if (headerLength > V3_MIN_HEADER_LENGTH) {
                compressionType = Byte.toUnsignedInt(b.get(104));
            }
        }
        long backingFileOffset = b.getLong(8);
        if (Long.compareUnsigned(backingFileOffset, 1L << clusterBits) > 0) {
            throw new BlockException.Corrupt("Invalid backing file offset");
        }
        return new Qcow2Header(version, backingFileOffset, b.getInt(16), clusterBits, b.getLong(24),
                b.getInt(32), b.getInt(36), b.getLong(40), b.getLong(48), b.getInt(56), b.getInt(60),
                b.getLong(64), incompatible, compatible, autoclear, refcountOrder, headerLength,
                compressionType);
    }

    long clusterSize() {
        return 1L << clusterBits;
    }

    /** Where the header extensions start. */
    int extensionsStart() {
        return version == 2 ? V2_HEADER_LENGTH : headerLength;
    }

    /** Where the header extensions must end: at the backing file name, or the end of the first cluster. */
    long extensionsEnd() {
        return backingFileOffset != 0 ? backingFileOffset : clusterSize();
    }

    boolean hasExtendedL2() {
        return (incompatibleFeatures & INCOMPAT_EXTL2) != 0;
    }

    boolean hasDataFile() {
        return (incompatibleFeatures & INCOMPAT_DATA_FILE) != 0;
    }

    boolean dataFileRaw() {
        return (autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) != 0;
    }

    boolean isCorrupt() {
        return (incompatibleFeatures & INCOMPAT_CORRUPT) != 0;
    }

    boolean isDirty() {
        return (incompatibleFeatures & INCOMPAT_DIRTY) != 0;
    }

    boolean lazyRefcounts() {
        return (compatibleFeatures & COMPAT_LAZY_REFCOUNTS) != 0;
    }

    int refcountBits() {
        return 1 << refcountOrder;
    }
}
