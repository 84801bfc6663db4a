package io.jblock.cli.img;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.qemuImg;
import static io.jblock.cli.img.CompatSupport.qemuIo;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code check} of damaged snapshot tables against qemu-img 7.2, with the
 * damage QEMU's iotest 261 does: too much extra data in an entry, too many
 * snapshots, a table over the 64 MiB limit, version 3 entries without a
 * disk size, an unaligned table. qemu-img opens such images for a check
 * (BDRV_O_CHECK) and repairs them with {@code -r all}; jblock must too. For
 * each: {@code info}, {@code check} (human, JSON, {@code -r leaks}) print
 * the same; {@code check -r all} on two copies, one per tool, prints the
 * same; then qemu-img finds both repaired copies clean, alike, and lists
 * the same snapshots in them.
 */
class ImgCheckSnapshotTableCompatTest {
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

    /** A 64 MiB image with some data and the snapshots named. */
    private Path withSnapshots(String options, String... names) throws Exception {
        Path img = dir.resolve("s.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), "64M");
        qemuIo(img, "write -P 1 0 128k");
        for (String n : names) {
            qemuImg("snapshot", "-c", n, img.toString());
        }
        return img;
    }

    /** Offset of entry {@code index} of the table (each entry 8-byte aligned). */
    private static long entry(Qcow2Surgery s, int index) throws Exception {
        long at = s.u64(64);
        for (int i = 0; i < index; i++) {
            int ids = (s.u32(at + 12) >>> 16) + (s.u32(at + 12) & 0xffff);
            at = (at + 40 + Integer.toUnsignedLong(s.u32(at + 36)) + ids + 7) & ~7L;
        }
        return at;
    }

    /** Marks the clusters of {@code [from, to)} allocated in refcount block 0 (16-bit refcounts), as iotest 261. */
    private static void allocate(Qcow2Surgery s, long from, long to) throws Exception {
        for (long c = from / CLUSTER; c < (to + CLUSTER - 1) / CLUSTER; c++) {
            s.setRefcount(c, 1);
        }
    }

    /**
     * The whole comparison. {@code repairable}: qemu-img's {@code -r all}
     * ends with a clean image.
     */
    private void compareCheckAndRepair(Path img, boolean repairable) throws Exception {
        assertSameAsQemu(args("info", img.toString()));
        for (List<String> form : List.of(args(), args("--output=json"), args("-r", "leaks"), args("-q"))) {
            Path copy = dir.resolve("form.qcow2");
            Files.copy(img, copy, StandardCopyOption.REPLACE_EXISTING);
            List<String> a = args("check");
            a.addAll(form);
            a.add(copy.toString());
            assertSameAsQemu(a);
        }
        Path q = dir.resolve("q.qcow2");
        Path j = dir.resolve("j.qcow2");
        Files.copy(img, q, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(img, j, StandardCopyOption.REPLACE_EXISTING);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args("check", "-r", "all", q.toString()));
        QemuImgOracle.Run got = QemuImgOracle.jblock(args("check", "-r", "all", j.toString()));
        assertThat(new QemuImgOracle.Run(got.out().replace(j.toString(), q.toString()),
                got.err().replace(j.toString(), q.toString()), got.status())).as("check -r all").isEqualTo(expected);
        QemuImgOracle.Run qAfter = QemuImgOracle.qemu(args("check", "--output=json", q.toString()));
        QemuImgOracle.Run jAfter = QemuImgOracle.qemu(args("check", "--output=json", j.toString()));
        assertThat(qAfter.status()).as("qemu-img check of qemu-img's repair: %s", qAfter).isEqualTo(repairable ? 0 : 1);
        assertThat(jAfter.status()).as("qemu-img check of jblock's repair: %s", jAfter).isEqualTo(qAfter.status());
        if (repairable) {
            assertThat(jAfter.out().replace(j.toString(), q.toString())).isEqualTo(qAfter.out());
            QemuImgOracle.Run qList = QemuImgOracle.qemu(args("snapshot", "-l", q.toString()));
            QemuImgOracle.Run jList = QemuImgOracle.qemu(args("snapshot", "-l", j.toString()));
            assertThat(jList).as("snapshots left by jblock's repair").isEqualTo(qList);
            assertThat(QemuImgOracle.qemu(args("compare", q.toString(), j.toString())).status())
                    .as("guest data of both repairs").isZero();
            // And jblock reads the repaired image as qemu-img does.
            assertSameAsQemu(args("snapshot", "-l", j.toString()));
        }
    }

    @Test
    void tooMuchExtraDataInAnEntryIsCutByTheRepair() throws Exception {
        Path img = withSnapshots("compat=1.1", "sn0", "sn1", "sn2", "sn3");
        try (Qcow2Surgery s = new Qcow2Surgery(img)) {
            // 64 KiB of extra data: it also runs past the end of the file, which QEMU reads as zeroes.
            s.put32(entry(s, 3) + 36, 0x10000);
        }
        compareCheckAndRepair(img, true);
    }

    @Test
    void extraDataJustOverTheLimitInsideTheFile() throws Exception {
        Path img = withSnapshots("compat=1.1", "sn0", "sn1");
        try (Qcow2Surgery s = new Qcow2Surgery(img)) {
            long e = entry(s, 0);
            s.put32(e + 36, 1025);
            s.put64(s.length() + 2 * CLUSTER - 8, 0); // room for it inside the file, leaked
        }
        compareCheckAndRepair(img, true);
    }

    @Test
    void version3EntriesWithoutADiskSizeAreCompleted() throws Exception {
        Path img = withSnapshots("compat=0.10", "s0", "s1", "s2");
        // Entry 0 loses its extra data, entry 1 keeps only the 64-bit VM state size: valid in version 2 ...
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(64);
            long table = f.readLong();
            byte[] old = new byte[4096];
            f.seek(table);
            f.readFully(old, 0, (int) Math.min(old.length, f.length() - table));
            java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(old);
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            int at = 0;
            for (int i = 0; i < 3; i++) {
                at = (at + 7) & ~7;
                int texts = Short.toUnsignedInt(in.getShort(at + 12)) + Short.toUnsignedInt(in.getShort(at + 14));
                int extra = in.getInt(at + 36);
                int keep = i == 0 ? 0 : i == 1 ? 8 : extra;
                while (out.size() % 8 != 0) {
                    out.write(0);
                }
                byte[] fixed = java.util.Arrays.copyOfRange(old, at, at + 40);
                java.nio.ByteBuffer.wrap(fixed).putInt(36, keep);
                out.write(fixed);
                out.write(old, at + 40, keep);
                out.write(old, at + 40 + extra, texts);
                at += 40 + extra + texts;
            }
            out.write(new byte[64]);
            f.seek(table);
            f.write(out.toByteArray());
            // ... which this header now says it is not: version 3, 16-bit refcounts, a 104-byte header.
            f.seek(4);
            f.writeInt(3);
            f.seek(96);
            f.writeInt(4);
            f.writeInt(104);
        }
        compareCheckAndRepair(img, true);
    }

    @Test
    void tooManySnapshotsAreCutToTheLimit() throws Exception {
        Path img = dir.resolve("many.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", img.toString(), "64M");
        try (Qcow2Surgery s = new Qcow2Surgery(img)) {
            // 131072 all-zero entries at 1 MiB (valid entries in version 2); one past the limit has an L1 table
            // two clusters before 1 MiB, with an L2 table one cluster before it.
            s.put64(64, 0x100000);
            s.put32(60, 0x20000);
            long end = 0x100000 + 40L * 0x20000;
            s.put64(end - 8, 0);
            s.put64(0x100000 + 40L * 0x10000, 0xe0000);
            s.put32(0x100000 + 40L * 0x10000 + 8, 1);
            s.put64(0x100000 - 2 * CLUSTER, 0x8000_0000_000f_0000L);
            allocate(s, 0x100000 - 2 * CLUSTER, end);
        }
        compareCheckAndRepair(img, true);
    }

    @Test
    void aTableOverTheSizeLimitLosesTheSnapshotsPastIt() throws Exception {
        Path img = dir.resolve("big.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "64M");
        // Entries of 1 KiB extra data, a 65535-byte id and name (all zeroes), until past 64 MiB: sparse.
        long entrySize = 40 + 1024 + 65535 + 65535 + 2;
        long at = 0x100000;
        long written = 0;
        int count = 0;
        try (Qcow2Surgery s = new Qcow2Surgery(img)) {
            s.put64(64, 0x100000);
            while (written <= 64L << 20) {
                s.put32(at + 12, 0xffffffff);
                s.put32(at + 36, 1024);
                at += entrySize;
                written += entrySize;
                count++;
            }
            s.put64(at - 8, 0);
            s.put64(at - entrySize, 0xe0000);
            s.put32(at - entrySize + 8, 1);
            s.put64(0x100000 - 2 * CLUSTER, 0x8000_0000_000f_0000L);
            allocate(s, 0x100000 - 2 * CLUSTER, at);
            s.put32(60, count);
        }
        compareCheckAndRepair(img, true);
    }

    @Test
    void anUnalignedTableFailsTheCheckEvenWithRepairs() throws Exception {
        Path img = withSnapshots("compat=1.1", "sn0");
        try (Qcow2Surgery s = new Qcow2Surgery(img)) {
            s.put64(64, s.u64(64) + 8);
        }
        compareCheckAndRepair(img, false);
    }

    @Test
    void anUnalignedOffsetIsRefusedEvenWithoutSnapshots() throws Exception {
        Path img = withSnapshots("compat=1.1");
        try (Qcow2Surgery s = new Qcow2Surgery(img)) {
            s.put64(64, 0x1234);
        }
        compareCheckAndRepair(img, false);
    }

    @Test
    void unknownExtraDataIsCarriedOverWhenTheTableIsWrittenAgain() throws Exception {
        Path img = withSnapshots("compat=1.1", "sn0", "sn1");
        byte[] important = "very important data".getBytes(StandardCharsets.US_ASCII);
        try (Qcow2Surgery s = new Qcow2Surgery(img);
             RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            // Entry 1 (the last) gets 42 bytes of extra data: the 24 known, then 18 unknown ones.
            long e = entry(s, 1);
            int texts = (s.u32(e + 12) >>> 16) + (s.u32(e + 12) & 0xffff);
            byte[] idAndName = new byte[texts];
            f.seek(e + 40 + 24);
            f.readFully(idAndName);
            s.put32(e + 36, 42);
            f.seek(e + 40 + 24);
            f.write(important, 0, 18);
            f.write(idAndName);
        }
        Path q = dir.resolve("q.qcow2");
        Path j = dir.resolve("j.qcow2");
        Files.copy(img, q);
        Files.copy(img, j);
        qemuImg("snapshot", "-c", "sn2", q.toString());
        assertThat(QemuImgOracle.jblock(args("snapshot", "-c", "sn2", j.toString())).status()).isZero();
        for (Path p : List.of(q, j)) {
            try (Qcow2Surgery s = new Qcow2Surgery(p); RandomAccessFile f = new RandomAccessFile(p.toFile(), "r")) {
                long e = entry(s, 1);
                assertThat(s.u32(e + 36)).as("extra data size of entry 1 in %s", p.getFileName()).isEqualTo(42);
                byte[] unknown = new byte[18];
                f.seek(e + 40 + 24);
                f.readFully(unknown);
                assertThat(unknown).isEqualTo(java.util.Arrays.copyOf(important, 18));
            }
        }
        QemuImgOracle.Run qList = QemuImgOracle.qemu(args("snapshot", "-l", q.toString()));
        QemuImgOracle.Run jList = QemuImgOracle.qemu(args("snapshot", "-l", j.toString()));
        assertThat(mask(jList.out())).isEqualTo(mask(qList.out()));
        assertThat(QemuImgOracle.qemu(args("check", j.toString())).status()).isZero();
    }

    /** The snapshot list without the date of the snapshot each tool took just now. */
    private static String mask(String list) {
        List<String> lines = new ArrayList<>();
        for (String l : list.split("\n")) {
            lines.add(l.replaceAll("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d", "DATE"));
        }
        return String.join("\n", lines);
    }
}
