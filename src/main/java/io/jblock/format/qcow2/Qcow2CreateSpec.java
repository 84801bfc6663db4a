package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.ImageCreation;
import io.jblock.block.Prealloc;

import java.util.Set;

/**
 * A new qcow2 image's parameters, read from the {@code -o} options and
 * checked as QEMU 7.2 checks them, in its order and with its words: first
 * the option values that name a choice (compat, backing_fmt, encrypt.*,
 * preallocation, compression_type; "Parameter 'version' does not accept
 * value 'foo'"), then qcow2_co_create's combinations (extended L2 needs
 * version 3 and 16 KiB clusters, refcount widths other than 16 need
 * version 3, a backing file excludes preallocation unless extended L2 is
 * on, data_file_raw needs data_file and implies preallocation=metadata...).
 */
record Qcow2CreateSpec(long size, int version, int clusterBits, int refcountOrder, boolean lazyRefcounts,
                       int compressionType, boolean extendedL2, Prealloc preallocation, String backingFile,
                       String backingFormat, String dataFile, boolean dataFileRaw, String encryptFormat,
                       String keySecret) {
    private static final long DEFAULT_CLUSTER_SIZE = 65536;
    /** QEMU 7.2's BlockdevDriver names, which backing_fmt must be one of (as cli.img.QemuFormats). */
    private static final Set<String> BLOCKDEV_DRIVERS = Set.of("blkdebug", "blklogwrites", "blkreplay", "blkverify",
            "bochs", "cloop", "compress", "copy-before-write", "copy-on-read", "dmg", "file", "snapshot-access",
            "ftp", "ftps", "gluster", "host_cdrom", "host_device", "http", "https", "iscsi", "luks", "nbd", "nfs",
            "null-aio", "null-co", "nvme", "nvme-io_uring", "parallels", "preallocate", "qcow", "qcow2", "qed",
            "quorum", "raw", "rbd", "replication", "ssh", "throttle", "vdi", "vhdx", "virtio-blk-vfio-pci",
            "virtio-blk-vhost-user", "virtio-blk-vhost-vdpa", "vmdk", "vpc", "vvfat");

    long incompatibleFeatures() {
        long f = 0;
        if (dataFile != null) {
            f |= Qcow2Header.INCOMPAT_DATA_FILE;
        }
        if (compressionType != Qcow2Header.COMPRESSION_ZLIB) {
            f |= Qcow2Header.INCOMPAT_COMPRESSION;
        }
        if (extendedL2) {
            f |= Qcow2Header.INCOMPAT_EXTL2;
        }
        return f;
    }

    long compatibleFeatures() {
        return lazyRefcounts ? Qcow2Header.COMPAT_LAZY_REFCOUNTS : 0;
    }

    long autoclearFeatures() {
        return dataFileRaw ? Qcow2Header.AUTOCLEAR_DATA_FILE_RAW : 0;
    }

    static Qcow2CreateSpec parse(ImageCreation r) throws BlockException {
        // QEMU's legacy names first become its QAPI ones, then the QAPI visitor reads them in its order.
        String compat = r.option("compat");
        int version = 3;
        if (compat != null) {
            version = switch (compat) {
                case "0.10", "v2" -> 2;
                case "1.1", "v3" -> 3;
                default -> throw invalid("Parameter 'version' does not accept value '" + compat + "'");
            };
        }
        String backingFile = r.option("backing_file");
        String backingFormat = r.option("backing_fmt");
        if (backingFormat != null && !BLOCKDEV_DRIVERS.contains(backingFormat)) {
            throw invalid("Parameter 'backing-fmt' does not accept value '" + backingFormat + "'");
        }
        String encryptFormat = r.option("encrypt.format");
        if ("on".equals(r.option("encryption"))) {
            encryptFormat = "aes";
        }
        boolean anyEncrypt = r.options().keySet().stream().anyMatch(k -> k.startsWith("encrypt."));
        if (encryptFormat == null && anyEncrypt) {
            throw invalid("Parameter 'encrypt.format' is missing");
        }
        if (encryptFormat != null && !encryptFormat.equals("aes") && !encryptFormat.equals("luks")) {
            throw invalid("Parameter 'format' does not accept value '" + encryptFormat + "'");
        }
        long clusterSize = r.options().containsKey("cluster_size")
                ? Long.parseUnsignedLong(r.option("cluster_size")) : DEFAULT_CLUSTER_SIZE;
        Prealloc prealloc = Prealloc.OFF;
        String preallocText = r.option("preallocation");
        if (preallocText != null) {
            prealloc = switch (preallocText) {
                case "off" -> Prealloc.OFF;
                case "metadata" -> Prealloc.METADATA;
                case "falloc" -> Prealloc.FALLOC;
                case "full" -> Prealloc.FULL;
                default -> throw invalid("Parameter 'preallocation' does not accept value '" + preallocText + "'");
            };
        }
        String compressionText = r.option("compression_type");
        int compression = Qcow2Header.COMPRESSION_ZLIB;
        if (compressionText != null) {
            compression = switch (compressionText) {
                case "zlib" -> Qcow2Header.COMPRESSION_ZLIB;
                case "zstd" -> Qcow2Header.COMPRESSION_ZSTD;
                default -> throw invalid("Parameter 'compression-type' does not accept value '"
                        + compressionText + "'");
            };
        }
        // qcow2_co_create's own checks, in its order. The size was rounded up to a sector already.
        long size = (r.size() + 511) & ~511L;
        boolean extendedL2 = "on".equals(r.option("extended_l2"));
        if (extendedL2 && version < 3) {
            throw invalid("Extended L2 entries are only supported with compatibility level 1.1 and above "
                    + "(use version=v3 or greater)");
        }
        int clusterBits = Long.numberOfTrailingZeros(clusterSize);
        if (clusterSize == 0 || clusterBits < Qcow2Header.MIN_CLUSTER_BITS || clusterBits > Qcow2Header.MAX_CLUSTER_BITS
                || Long.bitCount(clusterSize) != 1) {
            throw invalid("Cluster size must be a power of two between 512 and 2048k");
        }
        if (extendedL2 && clusterSize < 16384) {
            throw invalid("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
        }
        if (backingFile != null && prealloc != Prealloc.OFF && !extendedL2) {
            throw invalid("Backing file and preallocation can only be used at the same time if extended_l2 is on");
        }
        if (backingFormat != null && backingFile == null) {
            throw invalid("Backing format cannot be used without backing file");
        }
        boolean lazy = "on".equals(r.option("lazy_refcounts"));
        if (version < 3 && lazy) {
            throw invalid("Lazy refcounts only supported with compatibility level 1.1 and above "
                    + "(use version=v3 or greater)");
        }
        long refcountBits = r.options().containsKey("refcount_bits") ? Long.parseLong(r.option("refcount_bits")) : 16;
        if (Long.compareUnsigned(refcountBits, 64) > 0 || Long.bitCount(refcountBits) != 1) {
            throw invalid("Refcount width must be a power of two and may not exceed 64 bits");
        }
        if (version < 3 && refcountBits != 16) {
            throw invalid("Different refcount widths than 16 bits require compatibility level 1.1 or above "
                    + "(use version=v3 or greater)");
        }
        String dataFile = r.option("data_file");
        boolean dataFileRaw = "on".equals(r.option("data_file_raw"));
        if (dataFileRaw && dataFile == null) {
            throw invalid("data-file-raw requires data-file");
        }
        if (dataFileRaw && backingFile != null) {
            throw invalid("Backing file and data-file-raw cannot be used at the same time");
        }
        if (dataFileRaw && prealloc == Prealloc.OFF) {
            // The raw data file must read as the image does, so the L2 tables map it 1:1 from the start.
            prealloc = Prealloc.METADATA;
        }
        if (dataFile != null && version < 3) {
            throw invalid("External data files are only supported with compatibility level 1.1 and above "
                    + "(use version=v3 or greater)");
        }
        if (compression != Qcow2Header.COMPRESSION_ZLIB && version < 3) {
            throw invalid("Non-zlib compression type is only supported with compatibility level 1.1 and above "
                    + "(use version=v3 or greater)");
        }
        return new Qcow2CreateSpec(size, version, clusterBits, Long.numberOfTrailingZeros(refcountBits), lazy,
                compression, extendedL2, prealloc, backingFile, backingFormat, dataFile, dataFileRaw, encryptFormat,
                r.option("encrypt.key-secret"));
    }

    /**
     * Encryption is set up last, on a finished image, as in QEMU. jblock has
     * no secret objects ({@code --object secret} is refused), so this fails
     * as qemu-img does when the secret it names does not exist.
     */
    void checkEncryption() throws BlockException {
        if (encryptFormat == null) {
            return;
        }
        if (keySecret == null) {
            throw invalid("Parameter 'encrypt.key-secret' is required for cipher");
        }
        throw invalid("No secret with id '" + keySecret + "'");
    }

    private static BlockException invalid(String message) {
        return new BlockException(Errno.EINVAL, message);
    }
}
