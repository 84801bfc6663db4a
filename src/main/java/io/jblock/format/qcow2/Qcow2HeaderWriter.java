package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;

import java.nio.BufferOverflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Rewrites the first cluster of an existing image as QEMU 7.2's
 * qcow2_update_header does, to change what it records about its backing
 * file. The fixed fields are taken from the file as they are now (so the
 * dirty bit, snapshot table and sizes stay what they are); a version 3
 * header becomes 112 bytes long. The extensions follow in QEMU's order:
 * <pre>
 *   backing format (new) | data file | encryption | feature names (new) | bitmaps | unknown ones, in file order | end
 * </pre>
 * then the backing file name. Bitmaps that a QEMU without bitmap support
 * left behind (autoclear bit clear) are dropped, as QEMU drops them.
 */
final class Qcow2HeaderWriter {
    /** QEMU's limit on a backing file name in qcow2 (bytes). */
    static final int MAX_BACKING_NAME = 1023;
    private static final int V3_HEADER_LENGTH = 112;
    private static final int COMPRESSION_TYPE_AT = 104;

    private Qcow2HeaderWriter() {
    }

    /**
     * Writes the header cluster with {@code backingFile} (null: none) and
     * {@code backingFormat} (null: none). ENOSPC when it does not fit in the
     * first cluster (nothing is written then).
     */
    static void changeBacking(BlockNode file, Qcow2Header header, String backingFile, String backingFormat)
            throws BlockException {
        ByteBuffer old = first(file, header.clusterSize());
        Qcow2Header now = Qcow2Header.decode(old.duplicate().clear());
        write(file, now, old, backingFile, backingFormat, null, false, null);
    }

    /**
     * Writes the header cluster with a bitmaps extension for {@code bitmaps}
     * (null: none), and the autoclear bitmaps bit set when there are some and
     * cleared when not (QEMU's update_ext_header_and_dir); the backing file
     * and its format stay as the file has them.
     */
    static void changeBitmaps(BlockNode file, Qcow2Header header, Qcow2Extensions.Bitmaps bitmaps)
            throws BlockException {
        ByteBuffer old = first(file, header.clusterSize());
        Qcow2Header now = Qcow2Header.decode(old.duplicate().clear());
        String backingFormat = Qcow2Extensions.decode(now, old.duplicate().clear()).backingFormat();
        String backingFile = Qcow2Children.backingName(now, old.duplicate().clear());
        write(file, now, old, backingFile, backingFormat, null, true, bitmaps);
    }

    /**
     * What {@link #rewrite} changes: the fixed fields (version, feature bits,
     * refcount order and table) and, when {@code dataFile} is not null, the
     * external data file's name ("" drops it). The backing file stays.
     */
    record Edit(java.util.function.UnaryOperator<Qcow2Header> fields, String dataFile) {
    }

    /**
     * QEMU's qcow2_update_header after the driver changed its state: the
     * header cluster as it is in the file, with {@code edit} applied.
     * Returns the header now written.
     */
    static Qcow2Header rewrite(BlockNode file, long clusterSize, Edit edit) throws BlockException {
        ByteBuffer old = first(file, clusterSize);
        Qcow2Header now = Qcow2Header.decode(old.duplicate().clear());
        String backingFile = null;
        if (now.backingFileOffset() != 0 && now.backingFileSize() > 0) {
            long end = now.backingFileOffset() + Integer.toUnsignedLong(now.backingFileSize());
            if (end > clusterSize) {
                throw new BlockException.Corrupt("Backing file name too long");
            }
            byte[] name = new byte[now.backingFileSize()];
            old.get((int) now.backingFileOffset(), name);
            backingFile = new String(name, StandardCharsets.UTF_8);
        }
        String backingFormat = Qcow2Extensions.decode(now, old.duplicate().clear()).backingFormat();
        Qcow2Header next = edit.fields().apply(now);
        write(file, next, old, backingFile, backingFile == null ? null : backingFormat, edit.dataFile(), false, null);
        return next;
    }

    private static ByteBuffer first(BlockNode file, long clusterSize) throws BlockException {
        ByteBuffer old = ByteBuffer.allocate((int) clusterSize);
        file.read(0, old);
        return old.clear();
    }

    /**
     * Renders the header cluster: the fixed fields of {@code h} (72 bytes for
     * version 2; 112 for version 3, compression type included), the
     * extensions in QEMU's order, then the backing file name. With
     * {@code newBitmaps}, the bitmaps extension is {@code bitmaps} (null:
     * none) and the autoclear bit follows it; otherwise both stay as they are.
     */
    private static void write(BlockNode file, Qcow2Header h, ByteBuffer old, String backingFile,
                              String backingFormat, String dataFile, boolean newBitmaps,
                              Qcow2Extensions.Bitmaps bitmaps) throws BlockException {
        int clusterSize = (int) h.clusterSize();
        Qcow2Header was = Qcow2Header.decode(old.duplicate().clear());
        ByteBuffer b = ByteBuffer.allocate(clusterSize);
        int headerLength = h.version() >= 3 ? V3_HEADER_LENGTH : Qcow2Header.V2_HEADER_LENGTH;
        b.putInt(0, Qcow2Header.MAGIC).putInt(4, h.version()).putInt(20, h.clusterBits()).putLong(24, h.size())
                .putInt(32, h.cryptMethod()).putInt(36, h.l1Size()).putLong(40, h.l1TableOffset())
                .putLong(48, h.refcountTableOffset()).putInt(56, h.refcountTableClusters())
                .putInt(60, h.snapshotCount()).putLong(64, h.snapshotsOffset());
        if (h.version() >= 3) {
            b.putLong(72, h.incompatibleFeatures()).putLong(80, h.compatibleFeatures())
                    .putLong(88, h.autoclearFeatures()).putInt(96, h.refcountOrder()).putInt(100, headerLength);
            b.put(COMPRESSION_TYPE_AT, (byte) h.compressionType());
            if (newBitmaps) {
                long autoclear = h.autoclearFeatures();
                b.putLong(88, bitmaps != null ? autoclear | Qcow2Header.AUTOCLEAR_BITMAPS
                        : autoclear & ~Qcow2Header.AUTOCLEAR_BITMAPS);
            }
        }
        try {
            b.position(headerLength);
            if (backingFormat != null) {
                Qcow2CreateHeader.extension(b, Qcow2Extensions.BACKING_FORMAT,
                        backingFormat.getBytes(StandardCharsets.UTF_8));
            }
            List<Extension> kept = kept(was, old);
            if (dataFile == null) {
                put(b, kept, Qcow2Extensions.EXTERNAL_DATA_FILE);
            } else if (!dataFile.isEmpty()) {
                Qcow2CreateHeader.extension(b, Qcow2Extensions.EXTERNAL_DATA_FILE,
                        dataFile.getBytes(StandardCharsets.UTF_8));
            }
            put(b, kept, Qcow2Extensions.FULL_DISK_ENCRYPTION);
            Qcow2CreateHeader.featureTable(b, h.version(), clusterSize);
            if (!newBitmaps) {
                put(b, kept, Qcow2Extensions.BITMAPS);
            } else if (bitmaps != null) {
                ByteBuffer ext = ByteBuffer.allocate(24);
                ext.putInt(0, (int) bitmaps.count());
                ext.putLong(8, bitmaps.directorySize());
                ext.putLong(16, bitmaps.directoryOffset());
                Qcow2CreateHeader.extension(b, Qcow2Extensions.BITMAPS, ext.array());
            }
            for (Extension e : kept) {
                if (!known(e.magic())) {
                    Qcow2CreateHeader.extension(b, e.magic(), e.data());
                }
            }
            Qcow2CreateHeader.extension(b, Qcow2Extensions.END, new byte[0]);
            if (backingFile != null) {
                byte[] name = backingFile.getBytes(StandardCharsets.UTF_8);
                b.putLong(8, b.position());
                b.putInt(16, name.length);
                b.put(name);
            } else {
                b.putLong(8, 0);
                b.putInt(16, 0);
            }
        } catch (BufferOverflowException | IndexOutOfBoundsException e) {
            throw new BlockException(Errno.ENOSPC, "No space left in the file header");
        }
        file.write(0, b.clear(), 0);
    }

    private record Extension(int magic, byte[] data) {
    }

    private static boolean known(int magic) {
        return magic == Qcow2Extensions.BACKING_FORMAT || magic == Qcow2Extensions.FEATURE_NAME_TABLE
                || magic == Qcow2Extensions.EXTERNAL_DATA_FILE || magic == Qcow2Extensions.FULL_DISK_ENCRYPTION
                || magic == Qcow2Extensions.BITMAPS;
    }

    private static void put(ByteBuffer b, List<Extension> kept, int magic) {
        for (Extension e : kept) {
            if (e.magic() == magic) {
                Qcow2CreateHeader.extension(b, magic, e.data());
            }
        }
    }

    /** The extensions of the header as it is, but the ones QEMU writes afresh (backing format, feature names). */
    private static List<Extension> kept(Qcow2Header h, ByteBuffer first) {
        List<Extension> out = new ArrayList<>();
        long end = h.extensionsEnd();
        long at = h.extensionsStart();
        while (end - at >= 8) {
            int magic = first.getInt((int) at);
            long len = Integer.toUnsignedLong(first.getInt((int) at + 4));
            at += 8;
            if (magic == Qcow2Extensions.END || len > end - at) {
                break;
            }
            byte[] data = new byte[(int) len];
            first.get((int) at, data);
            boolean staleBitmaps = magic == Qcow2Extensions.BITMAPS
                    && (h.autoclearFeatures() & Qcow2Header.AUTOCLEAR_BITMAPS) == 0;
            if (magic != Qcow2Extensions.BACKING_FORMAT && magic != Qcow2Extensions.FEATURE_NAME_TABLE
                    && !staleBitmaps) {
                out.add(new Extension(magic, data));
            }
            at += (len + 7) & ~7L;
        }
        return out;
    }
}
