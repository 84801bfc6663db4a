package io.jblock.cli.io;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Faults on qcow2 through blkdebug under the qcow2 node's file, jblock io against
 * the real qemu-io 7.2: ENOSPC and EIO on a data write ({@code write_aio}), on
 * cluster allocation, and on metadata writes ({@code l2_update}, {@code l1_update},
 * {@code l2_alloc_write}, {@code refblock_alloc}, {@code refblock_update_part}),
 * under writethrough and writeback. Both tools print the same text and exit the
 * same; afterwards {@code qemu-img check} says the same of both images (never
 * corruption: leaks at most), QEMU reads both alike, and the write made before
 * the fault reads back.
 *
 * <p>What QEMU 7.2 does on a failed metadata write, and jblock with it: the
 * request that needed it fails with the injected errno; the image is <em>not</em>
 * marked corrupt (that is only for metadata found inconsistent); a table that
 * failed to reach the file stays dirty in the cache and is written again by the
 * next flush, so once the fault is gone later requests and flushes succeed.
 * Under writeback an L2 write fails in the flush, which fails (qemu-io's flush
 * prints nothing and the run exits 1).
 */
class Qcow2FaultsIoCompatTest {
    @TempDir
    Path tmp;

    record Fault(String event, String cache, int errno) {
        @Override
        public String toString() {
            return event + ", " + cache + ", errno " + errno;
        }
    }

    static Stream<Fault> faults() {
        List<Fault> all = new ArrayList<>();
        for (String event : List.of("write_aio", "cluster_alloc", "l2_update", "l1_update", "l2_alloc_write",
                "refblock_alloc", "refblock_update_part")) {
            for (String cache : List.of("writethrough", "writeback")) {
                for (int errno : new int[] {5, 28}) {
                    all.add(new Fault(event, cache, errno));
                }
            }
        }
        return all.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("faults")
    void aFaultFailsTheRequestAndLeavesTheImageConsistent(Fault fault) throws Exception {
        QemuIoOracle.requireQemu();
        Path forQemu = create(Files.createDirectories(tmp.resolve("qemu")));
        Path forJblock = create(Files.createDirectories(tmp.resolve("jblock")));
        String opts = "driver=qcow2,file.driver=blkdebug,file.inject-error.0.event=" + fault.event()
                + ",file.inject-error.0.errno=" + fault.errno() + ",file.inject-error.0.once=on"
                + ",file.image.filename=" + QemuIoOracle.IMG;
        // A new cluster in the first L2 table, one in a new L2 table (600M is past the first 512M), a flush, a
        // rewrite of an allocated cluster, then everything read back, the write made before the run included.
        List<String> args = new ArrayList<>(List.of("-t", fault.cache(), "--image-opts", opts));
        for (String c : List.of("write -P 2 1M 64k", "write -P 3 600M 64k", "flush", "write -P 4 0 4k", "flush",
                "read -P 2 1M 64k", "read -P 3 600M 64k", "read -P 4 0 4k", "read -P 1 4k 60k")) {
            args.add("-c");
            args.add(c);
        }
        QemuIoOracle.Outcome qemu = QemuIoOracle.runQemu(args, null, forQemu);
        QemuIoOracle.Outcome jblock = QemuIoOracle.runJblock(args, null, forJblock);
        assertThat(jblock.stdout()).as("stdout").isEqualTo(qemu.stdout());
        assertThat(jblock.stderr()).as("stderr").isEqualTo(qemu.stderr());
        assertThat(jblock.status()).as("exit status").isEqualTo(qemu.status());
        assertThat(jblock.stdout()).as("the write acknowledged before the run is intact")
                .doesNotContain("Pattern verification failed at offset 4096");

        QemuIoOracle.Outcome checkJ = run(List.of(QemuIoOracle.QEMU_IMG.toString(), "check", forJblock.toString()));
        QemuIoOracle.Outcome checkQ = run(List.of(QemuIoOracle.QEMU_IMG.toString(), "check", forQemu.toString()));
        assertThat(checkJ.status()).as("qemu-img check of jblock's image: %s", checkJ.stdout()).isIn(0, 3);
        assertThat(checkJ.status()).as("check: QEMU's image %s, jblock's %s", checkQ.stdout(), checkJ.stdout())
                .isEqualTo(checkQ.status());
        QemuIoOracle.Outcome info = run(List.of(QemuIoOracle.QEMU_IMG.toString(), "info", forJblock.toString()));
        assertThat(info.stdout()).as("not marked corrupt").contains("corrupt: false");
        QemuIoOracle.Outcome cmp = run(List.of(QemuIoOracle.QEMU_IMG.toString(), "compare", "-f", "qcow2", "-F",
                "qcow2", forJblock.toString(), forQemu.toString()));
        assertThat(cmp.status()).as("qemu-img compare: %s", cmp.stdout()).isZero();
    }

    private static Path create(Path dir) throws Exception {
        Path img = dir.resolve("test.qcow2");
        assertThat(run(List.of(QemuIoOracle.QEMU_IMG.toString(), "create", "-q", "-f", "qcow2", img.toString(),
                "1G")).status()).isZero();
        assertThat(run(List.of(QemuIoOracle.QEMU_IO.toString(), "-f", "qcow2", "-c", "write -P 1 0 64k",
                img.toString())).status()).isZero();
        return img;
    }

    private static QemuIoOracle.Outcome run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        return new QemuIoOracle.Outcome(out, "", p.waitFor(), null);
    }
}
