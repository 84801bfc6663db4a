package io.jblock.cli.io;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.List;

import static io.jblock.cli.io.IoScript.of;
import static io.jblock.cli.io.IoScript.raw;
import static io.jblock.cli.io.QemuIoOracle.IMG;

/**
 * qemu-io scripts whose results depend on what the file protocol does with
 * the host file: punching holes for discard and zero-writes (fallocate
 * PUNCH_HOLE / ZERO_RANGE, which also zeroes the bytes), fast zeroing
 * without fallback ({@code write -z -n}), preallocated growth
 * ({@code truncate -m falloc|full}), and bounce buffers for unaligned
 * requests under O_DIRECT ({@code -n}, {@code -t none|directsync},
 * {@code cache.direct=on}). jblock's FileNode does all of these, so they
 * compare like the rest.
 *
 * <p>What still differs, and so is not scripted here:
 * <ul>
 *   <li>Under O_DIRECT, a write to the tail of an image whose length is not
 *       a multiple of the direct alignment: QEMU writes the whole padded
 *       block and grows the file (6144 bytes become 8192 with the 4096
 *       alignment of this file system), jblock writes only up to the end.</li>
 *   <li>Under O_DIRECT, an unaligned zero-write without fallback
 *       ({@code -n} then {@code write -z -n 1 1}): QEMU fails with ENOTSUP
 *       because the unaligned head would need a read-modify-write; jblock's
 *       FileNode bounces it and succeeds.</li>
 * </ul>
 * The direct alignment itself does not show: both tools find 4096 on the
 * usual file systems (jblock because the JDK enforces the file system's
 * block size), and both bounce smaller requests.
 *
 * <p>Note: map and alloc do not depend on SEEK_DATA/SEEK_HOLE for raw
 * images. QEMU counts data and known-zero ranges of a raw image alike as
 * allocated, so qemu-io prints every range of a raw image as allocated,
 * holes included; those scripts live in {@link IoCompatTest}.
 */
class IoSparseCompatTest {
    static List<IoScript> scripts() {
        return List.of(
                raw("discard punches a hole that reads as zero", "write -P 0x11 0 1M", "discard 64k 64k",
                        "discard 0 1", "read -v 0 16", "read -P 0 64k 64k", "map", "alloc 0 1M"),
                raw("zero-write without fallback", "write -P 0x33 0 64k", "write -z -n 0 512",
                        "read -P 0 0 512"),
                raw("zero-write without fallback beyond the request limit", "write -z -n 0 3G",
                        "write -n -z 0 2147483137").size("4G"),
                raw("preallocated growth", "truncate -m falloc 2M", "length", "truncate -m full 3M", "length",
                        "truncate -m metadata 4M", "length", "map"),
                raw("odd lengths are seen in whole sectors", "truncate 1000000", "length", "map",
                        "read -v 999990 20", "truncate -m falloc 5000", "length", "write -P 7 4999 9",
                        "read -P 7 4999 9", "length"),
                of("nocache with unaligned requests", "-n", "-f", "raw", IMG, "-c", "write 1 1", "-c",
                        "read 0 512", "-c", "write -z 4k 4k", "-c", "read -v 0 16"),
                raw("reopen with O_DIRECT, then an unaligned write", "reopen -o cache.direct=on", "write 0 1",
                        "read -P 0xcd 0 1"),
                raw("zero-write without fallback at unaligned offsets", "write -P 1 0 1M", "write -z -n 1 1",
                        "write -z -n 4097 10000", "read -v 0 16", "read -P 1 14097 1000"),
                of("directsync with unaligned requests through every path", "-t", "directsync", "-f", "raw", IMG,
                        "-c", "write -P 3 1 4095", "-c", "writev -P 4 3 5 7", "-c", "aio_write -P 5 100 1", "-c",
                        "aio_flush", "-c", "read -v 0 16", "-c", "write -z 4095 2", "-c", "discard 1 8000", "-c",
                        "read -v 4088 16"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scripts")
    void jblockIoBehavesAsQemuIo(IoScript script, @TempDir Path tmp) throws Exception {
        IoCompatSupport.assertSameAsQemu(script, tmp);
    }
}
