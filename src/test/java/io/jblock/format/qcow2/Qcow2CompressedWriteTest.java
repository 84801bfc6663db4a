package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Compressed clusters written by jblock (zlib with QEMU's 4 KiB window, and
 * zstd) read back through qemu-io, and {@code qemu-img check} counts them as
 * compressed with no errors and no leaks; QEMU's rules for where compressed
 * writes may go.
 */
class Qcow2CompressedWriteTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"compression_type=zlib", "compression_type=zstd", "cluster_size=512",
            "cluster_size=2M", "compression_type=zstd,cluster_size=4k", "extended_l2=on", "refcount_bits=1"})
    void compressedClustersReadBackThroughQemuIo(String options) throws Exception {
        Path img = dir.resolve("c.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), "8M");
        int cs;
        try (Drive d = open(img)) {
            cs = (int) d.root().info().clusterSize();
            int clusters = (int) Math.min(8, (8L << 20) / cs);
            for (int i = 0; i < clusters; i++) {
                d.write((long) i * cs, ByteBuffer.wrap(compressible(cs, i)), WriteFlags.COMPRESSED);
            }
            // One more write of all clusters must be refused: they are allocated now.
            assertThatThrownBy(() -> d.write(0, ByteBuffer.wrap(compressible(cs, 0)), WriteFlags.COMPRESSED))
                    .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EIO));
            // A partial overwrite of a compressed cluster copies it into a normal cluster.
            d.write(cs / 2, ByteBuffer.wrap(new byte[]{9, 9, 9}), WriteFlags.NONE);
        }
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as("qemu-img check: %s", check.out()).isZero();
        assertThat(check.out()).contains("No errors were found on the image.").doesNotContain("leaked")
                .doesNotContain(" 0.00% compressed clusters");
        byte[] guest = QemuImages.qemuRaw(img);
        int clusters = (int) Math.min(8, (8L << 20) / cs);
        for (int i = 0; i < clusters; i++) {
            byte[] want = compressible(cs, i);
            if (i == 0) {
                want[cs / 2] = want[cs / 2 + 1] = want[cs / 2 + 2] = 9;
            }
            QemuImages.assertSameBytes(Arrays.copyOfRange(guest, i * cs, (i + 1) * cs), want,
                    "cluster " + i + " as QEMU reads it");
        }
    }

    @Test
    void qemusRulesForWhereCompressedWritesGo() throws Exception {
        Path img = dir.resolve("c.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "1000k");
        try (Drive d = open(img)) {
            assertThatThrownBy(() -> d.write(0, ByteBuffer.allocate(4096), WriteFlags.COMPRESSED))
                    .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
            assertThatThrownBy(() -> d.write(4096, ByteBuffer.allocate(65536), WriteFlags.COMPRESSED))
                    .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
            // The image's last cluster is partial (1000k): a write that ends at the end of the image is fine.
            d.write(960 * 1024, ByteBuffer.wrap(compressible(40 * 1024, 7)), WriteFlags.COMPRESSED);
            // Incompressible data is written as a normal cluster.
            byte[] noise = new byte[65536];
            new java.util.Random(1).nextBytes(noise);
            d.write(65536, ByteBuffer.wrap(noise), WriteFlags.COMPRESSED);
        }
        Peers.Result r = QemuImages.qemuIo(img, List.of("read -P 0 0 64k"));
        assertThat(r.out()).contains("read 65536/65536");
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.out()).contains("No errors were found on the image.")
                .contains("2/16 = 12.50% allocated").contains("50.00% compressed clusters")
                .doesNotContain("leaked");
        byte[] guest = QemuImages.qemuRaw(img);
        QemuImages.assertSameBytes(Arrays.copyOfRange(guest, 960 * 1024, 1000 * 1024), compressible(40 * 1024, 7),
                "the compressed partial last cluster");
    }

    @Test
    void compressedDataIsNeverPackedIntoAClusterThatWasFreedAndReused() throws Exception {
        // QEMU 7.2 corrupts this sequence: it keeps packing into the freed compressed cluster's host cluster
        // after that cluster went to other data (qemu-img check: OFLAG_COPIED ... refcount=2).
        Path img = dir.resolve("c.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", img.toString(), "16M");
        byte[] shadow = new byte[16 << 20];
        try (Drive d = open(img)) {
            byte[] a = compressible(2 << 20, 1);
            d.write(4 << 20, ByteBuffer.wrap(a), WriteFlags.COMPRESSED);
            System.arraycopy(a, 0, shadow, 4 << 20, a.length);
            // A partial zero-write copies the compressed cluster into a normal one and frees its host cluster.
            d.writeZeroes((4 << 20) + 600_000, 80_000, WriteFlags.MAY_UNMAP);
            java.util.Arrays.fill(shadow, (4 << 20) + 600_000, (4 << 20) + 680_000, (byte) 0);
            byte[] b = new byte[70_000];
            java.util.Arrays.fill(b, (byte) 0x4e);
            d.write((10 << 20) + 884_736, ByteBuffer.wrap(b), WriteFlags.NONE); // takes the freed host cluster
            System.arraycopy(b, 0, shadow, (10 << 20) + 884_736, b.length);
            byte[] c = compressible(2 << 20, 2);
            d.write(0, ByteBuffer.wrap(c), WriteFlags.COMPRESSED);
            System.arraycopy(c, 0, shadow, 0, c.length);
        }
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.out()).contains("No errors were found on the image.").doesNotContain("leaked");
        QemuImages.assertSameBytes(QemuImages.qemuRaw(img), shadow, "the guest bytes as QEMU reads them");
    }

    @Test
    void rawImagesRefuseCompressedWrites() throws Exception {
        Path img = dir.resolve("r.img");
        java.nio.file.Files.write(img, new byte[65536]);
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=raw"))) {
            assertThatThrownBy(() -> d.write(0, ByteBuffer.allocate(65536), WriteFlags.COMPRESSED))
                    .isInstanceOfSatisfying(BlockException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.ENOTSUP));
        }
    }

    private static Drive open(Path img) throws BlockException {
        return DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"));
    }

    /** Compressible bytes: runs of a value with a few distinct bytes, different for each seed. */
    static byte[] compressible(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) ((i / 97) * 31 + seed);
        }
        return b;
    }
}
