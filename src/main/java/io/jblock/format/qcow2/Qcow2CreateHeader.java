package io.jblock.format.qcow2;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The first cluster of a new image as QEMU 7.2's qcow2_update_header writes
 * it: the header ({@link Qcow2Header} draws its fields; 72 bytes for
 * version 2, 112 for version 3), then the extensions in QEMU's order, each
 * {@code magic (u32), length (u32), data padded to 8 bytes}:
 * <pre>
 *   backing file format   0xe2792aca  (when a backing format is recorded)
 *   external data file    0x44415441  (when the image has one)
 *   feature name table    0x6803f857  (version 3, clusters over 4 KiB: 8 entries of 48 bytes)
 *   end                   0x00000000
 * </pre>
 * then the backing file name, which the header points at; zeroes to the
 * end of the cluster.
 */
final class Qcow2CreateHeader {
    /** The feature name table of QEMU 7.2: type (0 incompatible, 1 compatible, 2 autoclear), bit, name. */
    private static final Object[][] FEATURES = {
            {0, 0, "dirty bit"},
            {0, 1, "corrupt bit"},
            {0, 2, "external data file"},
            {0, 3, "compression type"},
            {0, 4, "extended L2 entries"},
            {1, 0, "lazy refcounts"},
            {2, 0, "bitmaps"},
            {2, 1, "raw external data"},
    };
    private static final int FEATURE_ENTRY_BYTES = 48;
    private static final int FEATURE_TABLE_MIN_CLUSTER = 4096;

    private Qcow2CreateHeader() {
    }

    /** What the header says about a new image. */
    record Fields(int version, int clusterBits, long size, int l1Size, long l1Offset, long refcountTableOffset,
                  int refcountTableClusters, long incompatible, long compatible, long autoclear, int refcountOrder,
                  int compressionType, String backingFile, String backingFormat, String dataFile) {
    }

    static ByteBuffer render(Fields f) {
        int clusterSize = 1 << f.clusterBits();
        ByteBuffer b = ByteBuffer.allocate(clusterSize);
        int headerLength = f.version() >= 3 ? 112 : 72;
        b.putInt(0, Qcow2Header.MAGIC);
        b.putInt(4, f.version());
        b.putInt(20, f.clusterBits());
        b.putLong(24, f.size());
        b.putInt(32, Qcow2Header.CRYPT_NONE);
        b.putInt(36, f.l1Size());
        b.putLong(40, f.l1Offset());
        b.putLong(48, f.refcountTableOffset());
        b.putInt(56, f.refcountTableClusters());
        if (f.version() >= 3) {
            b.putLong(72, f.incompatible());
            b.putLong(80, f.compatible());
            b.putLong(88, f.autoclear());
            b.putInt(96, f.refcountOrder());
            b.putInt(100, headerLength);
            b.put(104, (byte) f.compressionType());
        }
        b.position(headerLength);
        if (f.backingFormat() != null) {
            extension(b, Qcow2Extensions.BACKING_FORMAT, f.backingFormat().getBytes(StandardCharsets.UTF_8));
        }
        if (f.dataFile() != null) {
            extension(b, Qcow2Extensions.EXTERNAL_DATA_FILE, f.dataFile().getBytes(StandardCharsets.UTF_8));
        }
        featureTable(b, f.version(), clusterSize);
        extension(b, 0, new byte[0]);
        if (f.backingFile() != null) {
            byte[] name = f.backingFile().getBytes(StandardCharsets.UTF_8);
            b.putLong(8, b.position());
            b.putInt(16, name.length);
            b.put(name);
        }
        return b.clear();
    }

    /** Whether the header, its extensions and the backing name fit in the first cluster. */
    static boolean fits(Fields f) {
        try {
            render(f);
            return true;
        } catch (java.nio.BufferOverflowException | IndexOutOfBoundsException e) {
            return false;
        }
    }

    /** The feature name table extension, where QEMU 7.2 writes one (also {@link Qcow2HeaderWriter}). */
    static void featureTable(ByteBuffer b, int version, int clusterSize) {
        // QEMU 7.2 leaves the table out of images with clusters of 4 KiB or less (found by creating them).
        if (version >= 3 && clusterSize > FEATURE_TABLE_MIN_CLUSTER) {
            ByteBuffer table = ByteBuffer.allocate(FEATURES.length * FEATURE_ENTRY_BYTES);
            for (int i = 0; i < FEATURES.length; i++) {
                int at = i * FEATURE_ENTRY_BYTES;
                table.put(at, (byte) (int) (Integer) FEATURES[i][0]);
                table.put(at + 1, (byte) (int) (Integer) FEATURES[i][1]);
                table.put(at + 2, ((String) FEATURES[i][2]).getBytes(StandardCharsets.US_ASCII));
            }
            extension(b, Qcow2Extensions.FEATURE_NAME_TABLE, table.array());
        }
    }

    /** One extension at the buffer's position: magic, length, data padded to 8 bytes. */
    static void extension(ByteBuffer b, int magic, byte[] data) {
        b.putInt(magic);
        b.putInt(data.length);
        b.put(data);
        b.position(b.position() + ((8 - data.length % 8) % 8));
    }
}
