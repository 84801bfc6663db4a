package io.jblock.cli.img;

import io.jblock.engine.EngineFile;
import io.jblock.engine.ThreadsEngine;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.BitSet;
import java.util.List;
import java.util.function.Function;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.qemuImg;
import static io.jblock.cli.img.CompatSupport.qemuIo;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Clusters a qcow2 image frees are discarded in its file as qemu-img 7.2
 * discards them (QEMU's discard passthrough): what a snapshot deletion or
 * revert frees (pass-discard-snapshot, on by default), not when the option
 * is off; what a check repair frees (always). Each case runs on two copies
 * of one image, one per tool; then the host clusters holding any data are
 * the same in both files, qemu-img finds both clean and their guest data
 * equal.
 */
class ImgDiscardPassthroughCompatTest {
    private static final int CLUSTER = 65536;
    private Path dir;

    @BeforeEach
    void makeDirectory() throws Exception {
        dir = CompatSupport.freshDir();
    }

    @AfterEach
    void removeDirectory() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    /** 16 MiB written, a snapshot "a", then all of it written again: the snapshot holds 16 MiB alone. */
    private Path snapshotted() throws Exception {
        Path img = dir.resolve("s.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "64M");
        qemuIo(img, "write -P 1 0 16M");
        qemuIo(img, "write -c -P 3 20M 64k");
        qemuImg("snapshot", "-c", "a", img.toString());
        qemuIo(img, "write -P 2 0 16M");
        qemuIo(img, "write -P 4 20M 64k");
        return img;
    }

    /**
     * Runs the command on a copy of {@code img} with each tool ({@code NAME}
     * in the arguments stands for the copy) and compares: output, status,
     * the clusters with data, qemu-img's check and the guest data.
     */
    private void compare(Path img, Function<Path, List<String>> command) throws Exception {
        Path q = dir.resolve("q.qcow2");
        Path j = dir.resolve("j.qcow2");
        Files.copy(img, q, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(img, j, StandardCopyOption.REPLACE_EXISTING);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(command.apply(q));
        QemuImgOracle.Run got = QemuImgOracle.jblock(command.apply(j));
        assertThat(new QemuImgOracle.Run(got.out().replace(j.toString(), q.toString()),
                got.err().replace(j.toString(), q.toString()), got.status())).isEqualTo(expected);
        BitSet qData = clustersWithData(q);
        assertThat(clustersWithData(j)).as("host clusters with data after %s (qemu-img's: %s)", command.apply(j),
                qData).isEqualTo(qData);
        assertThat(Files.size(j)).isEqualTo(Files.size(q));
        QemuImgOracle.Run qCheck = QemuImgOracle.qemu(args("check", q.toString()));
        QemuImgOracle.Run jCheck = QemuImgOracle.qemu(args("check", j.toString()));
        assertThat(jCheck.status()).as("%s", jCheck).isEqualTo(qCheck.status()).isZero();
        assertThat(QemuImgOracle.qemu(args("compare", q.toString(), j.toString())).status()).isZero();
    }

    /** The host clusters of a file that hold any data (SEEK_DATA/SEEK_HOLE). */
    private static BitSet clustersWithData(Path p) throws Exception {
        BitSet out = new BitSet();
        long size = Files.size(p);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, true, false)) {
            long off = 0;
            while (off < size) {
                long data = f.seekData(off);
                if (data < 0) {
                    break;
                }
                long hole = f.seekHole(data);
                out.set((int) (data / CLUSTER), (int) ((hole + CLUSTER - 1) / CLUSTER));
                off = hole;
            }
        }
        return out;
    }

    @Test
    void deletingASnapshotDiscardsWhatItAloneHeld() throws Exception {
        Path img = snapshotted();
        compare(img, p -> args("snapshot", "-d", "a", p.toString()));
        assertThat(clustersWithData(dir.resolve("j.qcow2")).cardinality()).as("the snapshot's 16 MiB are gone")
                .isLessThan(clustersWithData(img).cardinality() - 200);
    }

    @Test
    void revertingToASnapshotDiscardsWhatOnlyTheActiveLayerHeld() throws Exception {
        Path img = snapshotted();
        compare(img, p -> args("snapshot", "-a", "a", p.toString()));
    }

    @Test
    void passDiscardSnapshotOffKeepsTheClustersAllocated() throws Exception {
        Path img = snapshotted();
        compare(img, p -> args("snapshot", "-d", "a", "--image-opts",
                "driver=qcow2,file.filename=" + p + ",pass-discard-snapshot=off"));
        assertThat(clustersWithData(dir.resolve("j.qcow2"))).isEqualTo(clustersWithData(img));
    }

    @Test
    void theOtherPassDiscardOptionsAreAcceptedAndCheckedAsQemuChecksThem() throws Exception {
        Path img = snapshotted();
        compare(img, p -> args("snapshot", "-d", "a", "--image-opts",
                "driver=qcow2,file.filename=" + p + ",pass-discard-other=on,pass-discard-request=off"));
        for (String bad : List.of("pass-discard-snapshot=of", "pass-discard-other=2", "pass-discard-request=")) {
            assertSameAsQemu(args("snapshot", "-l", "--image-opts", "driver=qcow2,file.filename=" + img + "," + bad));
        }
    }

    @Test
    void aCheckRepairDiscardsTheLeakedClustersItFrees() throws Exception {
        Path img = dir.resolve("l.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "64M");
        qemuIo(img, "write -P 1 0 8M");
        try (Qcow2Surgery s = new Qcow2Surgery(img); RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            // The first 64 L2 entries forget their clusters: 4 MiB leaked.
            f.seek(s.l2Offset(0));
            f.write(new byte[8 * 64]);
        }
        compare(img, p -> args("check", "-r", "all", p.toString()));
        compare(img, p -> args("check", "-r", "leaks", p.toString()));
    }
}
