package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The refcount walk internal snapshots need (QEMU's
 * qcow2_update_snapshot_refcount): +1 on the active L1 table counts every
 * cluster twice and clears every COPIED flag, as after taking a snapshot;
 * -1 brings the image back to what it was, which qemu-img check finds clean.
 */
class Qcow2SnapshotRefcountsTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"cluster_size=4k", "refcount_bits=1,cluster_size=4k", "extended_l2=on"})
    void addingAndDroppingAReferenceToEveryClusterRoundTrips(String options) throws Exception {
        Path img = dir.resolve("s.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), "4M");
        qemuIo(img, List.of("write -c -P 3 0 64k", "write -P 1 100k 300k", "write -z 1M 64k",
                "write -P 2 2M 8k"));
        byte[] before = Files.readAllBytes(img);
        boolean oneBit = options.contains("refcount_bits=1");
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"))) {
            Qcow2Node q = (Qcow2Node) d.root();
            long l1 = q.activeL1Offset();
            if (oneBit) {
                org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> q.updateSnapshotRefcounts(l1, q.activeL1Size(), 1))
                        .hasMessageContaining("would exceed the 1-bit maximum");
                return;
            }
            q.updateSnapshotRefcounts(l1, q.activeL1Size(), 1);
            d.flush();
            ByteBuffer file = ByteBuffer.wrap(Files.readAllBytes(img));
            long l1e = file.getLong((int) l1);
            assertThat(l1e & Qcow2L2Entry.COPIED).as("L1 entry COPIED after +1").isZero();
            long l2 = l1e & Qcow2L2Entry.OFFSET_MASK;
            long data = file.getLong((int) (l2 + (100 * 1024 / q.info().clusterSize()) * (options.contains(
                    "extended_l2") ? 16 : 8)));
            assertThat(data & Qcow2L2Entry.COPIED).as("data entry COPIED after +1").isZero();
            assertThat(q.refcount(data & Qcow2L2Entry.OFFSET_MASK)).isEqualTo(2);
            q.updateSnapshotRefcounts(l1, q.activeL1Size(), -1);
        }
        Peers.Result check = Peers.run(60, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.out()).contains("No errors were found on the image.").doesNotContain("leaked");
        assertThat(Files.readAllBytes(img)).as("the image, byte for byte, after +1 and -1").isEqualTo(before);
    }
}
