package io.jblock.format.qcow2;

import io.jblock.block.BlockNode;
import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The check's own pieces: the computed counts in every refcount width, the
 * door used at open time (which repairs the caller's L1 table in place), and
 * hostile tables that must neither hang the check nor grow its memory.
 * Output and repairs against qemu-img are in ImgCheckCompatTest.
 */
@Timeout(120)
class Qcow2CheckTest {
    @TempDir
    Path dir;

    @Test
    void computedCountsKeepEveryWidthInTheRefcountBlockLayout() {
        long seed = new Random().nextLong();
        System.out.println("computedCounts seed " + seed);
        Random r = new Random(seed);
        for (int order = 0; order <= 6; order++) {
            int clusterBits = 9 + r.nextInt(4);
            Qcow2CheckCounts counts = new Qcow2CheckCounts(clusterBits, order, 0);
            Map<Long, Long> expected = new HashMap<>();
            long entriesPerBlock = 1L << (clusterBits + 3 - order);
            long max = order == 6 ? -1L : (1L << (1 << order)) - 1;
            for (int i = 0; i < 2000; i++) {
                long cluster = r.nextInt((int) entriesPerBlock * 3);
                long value = order == 6 ? r.nextLong() : r.nextLong() & max;
                counts.set(cluster, value);
                expected.put(cluster, value);
            }
            for (Map.Entry<Long, Long> e : expected.entrySet()) {
                long c = e.getKey();
                assertThat(counts.get(c)).as("order %d cluster %d", order, c).isEqualTo(e.getValue());
                byte[] block = counts.chunk(c / entriesPerBlock);
                assertThat(Qcow2CheckCounts.decode(block, c % entriesPerBlock, order)).isEqualTo(e.getValue());
            }
            assertThat(counts.max()).isEqualTo(max);
            assertThat(counts.chunkEmpty(10)).isTrue();
        }
    }

    @Test
    void computedCountsAreWhatQemuStores() throws Exception {
        for (int bits : new int[] {1, 2, 4, 8, 16, 32, 64}) {
            Path img = dir.resolve("rc" + bits + ".qcow2");
            qemuImg("create", "-q", "-f", "qcow2", "-o", "refcount_bits=" + bits + ",cluster_size=4k", img.toString(),
                    "64M");
            qemuIo(img, List.of("write -P 1 0 300k", "write -P 2 1M 4k"));
            try (Drive d = openFile(img, true)) {
                BlockNode file = d.root();
                List<String> lines = new ArrayList<>();
                Qcow2CheckResult res = Qcow2Check.run(file, Qcow2Check.Repair.NONE, lines::add);
                assertThat(lines).as("refcount_bits=%d", bits).isEmpty();
                assertThat(res.consistent()).isTrue();
                assertThat(res.allocatedClusters()).isEqualTo(76);
                // Raise one count: a leak of exactly the difference, found and repaired.
                Qcow2Header h = Qcow2Header.decode(Qcow2Check.read(file, 0, 112));
                Qcow2Refcounts stored = new Qcow2Refcounts(file, file.length(), h);
                assertThat(stored.refcount(0)).isEqualTo(1);
                long reftable = h.refcountTableOffset();
                long block = Qcow2Check.read(file, reftable, 8).getLong(0);
                byte[] b = Qcow2Check.read(file, block, 4096).array();
                Qcow2CheckCounts.encode(b, 0, h.refcountOrder(), 1);
                Qcow2CheckCounts.encode(b, 3, h.refcountOrder(), bits == 1 ? 1 : 3);
                file.write(block, ByteBuffer.wrap(b), 0);
                res = Qcow2Check.run(file, Qcow2Check.Repair.LEAKS, lines::add);
                assertThat(res.leaksFixed()).as("refcount_bits=%d: %s", bits, lines).isEqualTo(bits == 1 ? 0 : 1);
                assertThat(Qcow2Check.run(file, Qcow2Check.Repair.NONE, l -> { }).consistent()).isTrue();
            }
            assertThat(qemuImgCheck(img)).as("qemu-img check after jblock's repair").isZero();
        }
    }

    @Test
    void openTimeCheckRepairsTheCallersL1TableInPlace() throws Exception {
        Path img = dir.resolve("copied.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "8M");
        qemuIo(img, List.of("write -P 1 0 64k"));
        long l1Offset;
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(40);
            l1Offset = f.readLong();
            f.seek(l1Offset);
            long e = f.readLong();
            f.seek(l1Offset);
            f.writeLong(e & ~Qcow2L2Entry.COPIED);
        }
        try (Drive d = openFile(img, true)) {
            BlockNode file = d.root();
            Qcow2Header h = Qcow2Header.decode(Qcow2Check.read(file, 0, 112));
            Qcow2Extensions ext = Qcow2Extensions.decode(h, Qcow2Check.read(file, 0, (int) h.clusterSize()));
            long[] l1 = {Qcow2Check.read(file, l1Offset, 8).getLong(0)};
            assertThat(l1[0] & Qcow2L2Entry.COPIED).isZero();
            List<String> lines = new ArrayList<>();
            Qcow2CheckResult res = Qcow2Check.check(file, h, ext, l1, Qcow2Check.Repair.ALL, lines::add);
            assertThat(res.corruptionsFixed()).isEqualTo(1);
            assertThat(res.consistent()).isTrue();
            assertThat(lines).singleElement().asString().startsWith("Repairing OFLAG_COPIED L2 cluster: l1_index=0");
            assertThat(l1[0] & Qcow2L2Entry.COPIED).as("the caller's L1 entry").isNotZero();
            assertThat(Qcow2Check.read(file, l1Offset, 8).getLong(0)).as("the L1 entry on disk").isEqualTo(l1[0]);
        }
        assertThat(qemuImgCheck(img)).isZero();
    }

    @Test
    void aDirtyImageIsRepairedAsAtOpenAndComesOutClean() throws Exception {
        Path img = dir.resolve("dirty.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", img.toString(), "8M");
        // qemu-io's abort leaves the image dirty, its refcounts never written.
        io.jblock.testing.Peers.run(120, List.of(io.jblock.testing.Peers.require("qemu-io"), "-c",
                "write -P 1 0 200k", "-c", "abort", img.toString()));
        try (Drive d = openFile(img, true)) {
            BlockNode file = d.root();
            Qcow2Header h = Qcow2Header.decode(Qcow2Check.read(file, 0, 112));
            assertThat(h.isDirty()).isTrue();
            Qcow2Extensions ext = Qcow2Extensions.decode(h, Qcow2Check.read(file, 0, (int) h.clusterSize()));
            long[] l1 = new long[h.l1Size()];
            Qcow2Check.read(file, h.l1TableOffset(), h.l1Size() * 8).asLongBuffer().get(l1);
            List<String> lines = new ArrayList<>();
            Qcow2CheckResult r = Qcow2Check.repairDirty(file, h, ext, l1, lines::add);
            assertThat(r.corruptionsFixed()).as("%s", lines).isPositive();
            assertThat(r.consistent()).isTrue();
            assertThat(Qcow2Header.decode(Qcow2Check.read(file, 0, 112)).isDirty()).isFalse();
        }
        assertThat(qemuImgCheck(img)).isZero();
        assertThat(io.jblock.testing.Peers.run(120, List.of(io.jblock.testing.Peers.require("qemu-io"), "-r", "-c",
                "read -P 1 0 200k", img.toString())).out()).doesNotContain("fail");
    }

    @Test
    void repairNeedsAWritableFile() throws Exception {
        Path img = dir.resolve("ro.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "1M");
        try (Drive d = openFile(img, false)) {
            org.assertj.core.api.Assertions.assertThatThrownBy(
                    () -> Qcow2Check.run(d.root(), Qcow2Check.Repair.LEAKS, l -> { }))
                    .hasMessageContaining("read-write");
        }
    }

    /**
     * Every L1 entry of a 2 TiB image names one L2 table, and every entry of
     * that table names a cluster far past the end of the file: QEMU's
     * "exceeding the end of the file" corruption for each, no count kept for
     * them, and the check ends.
     */
    @Test
    void hostileTablesNeitherHangNorGrowTheCounts() throws Exception {
        Path img = dir.resolve("hostile.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "2T");
        qemuIo(img, List.of("write -P 1 0 64k"));
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(36);
            int l1Size = f.readInt();
            f.seek(40);
            long l1Offset = f.readLong();
            f.seek(l1Offset);
            long l2 = f.readLong() & Qcow2CheckImage.L1_OFFSET_MASK;
            for (int i = 0; i < l1Size; i++) {
                f.seek(l1Offset + 8L * i);
                f.writeLong(l2);
            }
            for (int i = 0; i < 8192; i++) {
                f.seek(l2 + 8L * i);
                f.writeLong(Qcow2L2Entry.COPIED | (1L << 54) | ((long) i << 16));
            }
        }
        try (Drive d = openFile(img, false)) {
            long[] messages = {0};
            Qcow2CheckResult res = Qcow2Check.run(d.root(), Qcow2Check.Repair.NONE, l -> messages[0]++);
            assertThat(res.failure()).isNull();
            assertThat(res.corruptions()).isGreaterThan(8192L * 32);
            assertThat(res.imageEndOffset()).isLessThan(1L << 30);
            assertThat(messages[0]).isGreaterThan(8192L * 32);
        }
    }

    private static Drive openFile(Path img, boolean writable) throws Exception {
        return DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=file"
                + (writable ? "" : ",read-only=on")));
    }

    private static int qemuImgCheck(Path img) throws Exception {
        return io.jblock.testing.Peers.run(120, List.of(io.jblock.testing.Peers.require("qemu-img"), "check",
                img.toString())).exit();
    }
}
