package io.jblock.cli.img;

import java.util.Set;

/**
 * The block drivers qemu-img 7.2 knows (Debian's build), so that a name
 * qemu-img would accept but jblock does not have yet gets "not available
 * yet" rather than QEMU's "Unknown file format", which would be untrue.
 */
final class QemuFormats {
    /** qemu-img 7.2's "Supported formats:" list. */
    static final Set<String> QEMU_DRIVERS = Set.of("blkdebug", "blklogwrites", "blkverify", "bochs", "cloop",
            "compress", "copy-before-write", "copy-on-read", "dmg", "file", "ftp", "ftps", "gluster", "host_cdrom",
            "host_device", "http", "https", "iscsi", "iser", "luks", "nbd", "nfs", "null-aio", "null-co", "nvme",
            "parallels", "preallocate", "qcow", "qcow2", "qed", "quorum", "raw", "rbd", "replication",
            "snapshot-access", "ssh", "throttle", "vdi", "vhdx", "vmdk", "vpc", "vvfat");

    /** Prefixes ("nbd:", "http:") that name a protocol driver in a file name, in QEMU 7.2. */
    static final Set<String> QEMU_PROTOCOLS = Set.of("file", "ftp", "ftps", "gluster", "gluster+tcp",
            "gluster+unix", "gluster+rdma", "host_cdrom", "host_device", "http", "https", "iscsi", "iser", "nbd",
            "nbd+tcp", "nbd+unix", "nfs", "null-aio", "null-co", "nvme", "rbd", "ssh", "vvfat");

    private QemuFormats() {
    }

    /** What jblock says for a driver QEMU has and jblock does not have yet. */
    static String notAvailable(String name) {
        return "the '" + name + "' format is not available yet in this version of jblock";
    }

    /**
     * The protocol prefix of a file name, as QEMU reads it: the text before a
     * ':' that comes before any '/'; null when there is none ("./a:b" has none).
     */
    static String protocolPrefix(String filename) {
        int colon = filename.indexOf(':');
        int slash = filename.indexOf('/');
        if (colon < 0 || (slash >= 0 && slash < colon)) {
            return null;
        }
        return filename.substring(0, colon);
    }
}
