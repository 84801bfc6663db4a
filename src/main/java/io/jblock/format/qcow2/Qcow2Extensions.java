package io.jblock.format.qcow2;

import io.jblock.block.BlockException;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The header extensions between the header and the backing file name (or the
 * end of the first cluster). Each one is
 *
 * <pre>
 *   0  type (u32)     4  length (u32)     8  data, padded to a multiple of 8
 * </pre>
 *
 * and a type of 0 ends the list. Unknown types are skipped, as the spec
 * allows. The bitmaps extension is checked here; its directory is read by
 * {@link Qcow2BitmapDirectory}.
 */
record Qcow2Extensions(
        String backingFormat,
        /** Incompatible (0), compatible (1) and autoclear (2) feature names by {@code type << 8 | bit}. */
        Map<Integer, String> featureNames,
        boolean hasCryptoHeader,
        Bitmaps bitmaps,
        String dataFile,
        List<Integer> unknownTypes) {

    static final int END = 0;
    static final int BACKING_FORMAT = 0xe2792aca;
    static final int FEATURE_NAME_TABLE = 0x6803f857;
    static final int BITMAPS = 0x23852875;
    static final int FULL_DISK_ENCRYPTION = 0x0537be77;
    static final int EXTERNAL_DATA_FILE = 0x44415441;

    /** QEMU keeps the backing format in a 16-byte buffer with its NUL. */
    static final int MAX_BACKING_FORMAT = 15;
    static final int FEATURE_ENTRY_SIZE = 48;
    static final int FEATURE_NAME_SIZE = 46;

    static final int FEATURE_INCOMPATIBLE = 0;
    static final int FEATURE_COMPATIBLE = 1;
    static final int FEATURE_AUTOCLEAR = 2;

    /** The bitmaps extension as stored: nb_bitmaps, reserved, directory size, directory offset. */
    record Bitmaps(long count, long directorySize, long directoryOffset) {
        /** QCOW2_MAX_BITMAPS: bitmap indexes fit in 16 bits. */
        static final long MAX_BITMAPS = 65535;
        /** QCOW2_MAX_BITMAP_DIRECTORY_SIZE: 1 KiB of directory entry for each of the most bitmaps. */
        static final long MAX_DIRECTORY_SIZE = 1024 * MAX_BITMAPS;

        /** The limits QEMU puts on the extension before it would read the directory, with its messages. */
        static Bitmaps checked(long count, long directorySize, long directoryOffset, long clusterSize)
                throws BlockException {
            if (count > MAX_BITMAPS) {
                throw new BlockException.Corrupt("bitmaps_ext: Image has " + count
                        + " bitmaps, exceeding the QEMU supported maximum of " + MAX_BITMAPS);
            }
            if (count == 0) {
                throw new BlockException.Corrupt("found bitmaps extension with zero bitmaps");
            }
            if ((directoryOffset & (clusterSize - 1)) != 0) {
                throw new BlockException.Corrupt("bitmaps_ext: invalid bitmap directory offset");
            }
            if (Long.compareUnsigned(directorySize, MAX_DIRECTORY_SIZE) > 0) {
                throw new BlockException.Corrupt("bitmaps_ext: bitmap directory size ("
                        + Long.toUnsignedString(directorySize) + ") exceeds the maximum supported size ("
                        + MAX_DIRECTORY_SIZE + ")");
            }
            return new Bitmaps(count, directorySize, directoryOffset);
        }
    }

    /**
     * Decodes the extensions found in {@code first}, the image's first bytes
     * (at least {@code header.extensionsEnd()} of them, zero padded past the
     * end of the file).
     */
    static Qcow2Extensions decode(Qcow2Header header, ByteBuffer first) throws BlockException {
        String backingFormat = null;
        Map<Integer, String> names = new TreeMap<>();
        boolean crypto = false;
        Bitmaps bitmaps = null;
        String dataFile = null;
        List<Integer> unknown = new ArrayList<>();
        long end = header.extensionsEnd();
        long at = header.extensionsStart();
        while (at < end) {
            if (end - at < 8) {
                throw new BlockException.Corrupt("Header extension too large");
            }
            int type = first.getInt((int) at);
            long len = Integer.toUnsignedLong(first.getInt((int) at + 4));
            at += 8;
            if (len > end - at) {
                throw new BlockException.Corrupt("Header extension too large");
            }
            int data = (int) at;
            switch (type) {
                case END -> at = end;
                case BACKING_FORMAT -> {
                    if (len > MAX_BACKING_FORMAT) {
                        throw new BlockException.Corrupt("ERROR: ext_backing_format: len=" + len
                                + " too large (>=" + (MAX_BACKING_FORMAT + 1) + ")");
                    }
                    backingFormat = string(first, data, (int) len);
                }
                case FEATURE_NAME_TABLE -> {
                    for (int e = 0; e + FEATURE_ENTRY_SIZE <= len; e += FEATURE_ENTRY_SIZE) {
                        int featureType = Byte.toUnsignedInt(first.get(data + e));
                        int bit = Byte.toUnsignedInt(first.get(data + e + 1));
                        names.put(featureType << 8 | bit, string(first, data + e + 2, FEATURE_NAME_SIZE));
                    }
                }
                case FULL_DISK_ENCRYPTION -> crypto = true;
                case BITMAPS -> {
                    if (len != 24) {
                        throw new BlockException.Corrupt("bitmaps_ext: Invalid extension length");
                    }
                    if ((header.autoclearFeatures() & Qcow2Header.AUTOCLEAR_BITMAPS) == 0) {
                        break; // written by a QEMU that did not know bitmaps: stale, QEMU ignores it
                    }
                    bitmaps = Bitmaps.checked(Integer.toUnsignedLong(first.getInt(data)), first.getLong(data + 8),
                            first.getLong(data + 16), header.clusterSize());
                }
                case EXTERNAL_DATA_FILE -> dataFile = string(first, data, (int) len);
                default -> unknown.add(type);
            }
            if (type == END) {
                break;
            }
            at += (len + 7) & ~7L;
        }
        return new Qcow2Extensions(backingFormat, names, crypto, bitmaps, dataFile, List.copyOf(unknown));
    }

    /** QEMU's report_unsupported_feature: the named features, then the unnamed bits in hex. */
    String describeIncompatible(long unknownBits) {
        StringBuilder sb = new StringBuilder();
        for (int bit = 0; bit < 64; bit++) {
            String name = featureNames.get(FEATURE_INCOMPATIBLE << 8 | bit);
            if ((unknownBits & (1L << bit)) != 0 && name != null) {
                sb.append(sb.isEmpty() ? "" : ", ").append(name);
                unknownBits &= ~(1L << bit);
            }
        }
        if (unknownBits != 0) {
            sb.append(sb.isEmpty() ? "" : ", ").append("Unknown incompatible feature: ")
                    .append(Long.toHexString(unknownBits));
        }
        return sb.toString();
    }

    /** Text up to its first NUL, as QEMU's strings in fixed fields end. */
    private static String string(ByteBuffer b, int at, int len) {
        byte[] bytes = new byte[len];
        b.get(at, bytes);
        int n = 0;
        while (n < len && bytes[n] != 0) {
            n++;
        }
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
    }
}
