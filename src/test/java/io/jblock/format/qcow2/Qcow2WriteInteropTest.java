package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static io.jblock.format.qcow2.QemuImages.qemuRaw;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Images qemu-img creates, written by jblock (seeded random writes,
 * zero-writes with and without MAY_UNMAP, discards, flushes) against a shadow
 * copy of the guest bytes; then {@code qemu-img check} finds no errors and no
 * leaks, and {@code qemu-img compare} finds the image identical to the shadow.
 */
class Qcow2WriteInteropTest {
    private static final long SIZE = 4L << 20;

    @TempDir
    Path dir;

    /** qemu-img create options, whether qemu-io fills it first (with compressed clusters), and a backing file. */
    static Stream<Arguments> variants() {
        return Stream.of(
                Arguments.of("compat=0.10", false, false),
                Arguments.of("compat=1.1", false, false),
                Arguments.of("compat=1.1", true, false),
                Arguments.of("cluster_size=512", false, false),
                Arguments.of("cluster_size=512,refcount_bits=64", true, false),
                Arguments.of("cluster_size=2M", false, false),
                Arguments.of("refcount_bits=1", true, false),
                Arguments.of("refcount_bits=64", false, false),
                Arguments.of("extended_l2=on,cluster_size=64k", true, false),
                Arguments.of("extended_l2=on,cluster_size=16k", false, true),
                Arguments.of("lazy_refcounts=on", false, false),
                Arguments.of("compression_type=zstd", true, false),
                Arguments.of("compat=1.1", false, true),
                Arguments.of("compat=0.10", true, true),
                Arguments.of("compat=1.1+snapshot", true, false),
                Arguments.of("extended_l2=on,cluster_size=32k+snapshot", true, true),
                Arguments.of("compat=0.10,cluster_size=4k+snapshot", true, false),
                Arguments.of("data_file=@", false, false),
                Arguments.of("data_file=@,data_file_raw=on", false, false),
                Arguments.of("data_file=@,extended_l2=on", false, true));
    }

    @ParameterizedTest(name = "{0} prefilled={1} backing={2}")
    @MethodSource("variants")
    void randomWorkloadLeavesACleanImageWithTheShadowsBytes(String options, boolean prefill, boolean withBacking)
            throws Exception {
        long seed = Long.getLong("qcow2.seed", new Random().nextLong()); // -Dqcow2.seed=N replays a run
        System.out.println("qcow2 write workload: " + options + " prefill=" + prefill + " backing=" + withBacking
                + " seed " + seed);
        Random r = new Random(seed);
        Path img = dir.resolve("img.qcow2");
        Path dataFile = dir.resolve("data.raw");
        options = options.replace("@", dataFile.toString());
        boolean snapshot = options.endsWith("+snapshot");
        options = options.replace("+snapshot", "");
        List<String> create = new ArrayList<>(List.of("create", "-q", "-f", "qcow2", "-o", options));
        byte[] backingBytes = new byte[(int) SIZE];
        if (withBacking) {
            Path base = dir.resolve("base.qcow2");
            qemuImg("create", "-q", "-f", "qcow2", base.toString(), Long.toString(SIZE));
            qemuIo(base, QemuImages.randomWrites(seed, SIZE, 512, 300_000, 20, false));
            backingBytes = qemuRaw(base);
            create.addAll(List.of("-b", base.getFileName().toString(), "-F", "qcow2"));
        }
        create.addAll(List.of(img.toString(), Long.toString(SIZE)));
        qemuImg(create.toArray(String[]::new));
        if (prefill) {
            // QEMU writes compressed clusters only where nothing is allocated yet: those first.
            List<String> cmds = new ArrayList<>();
            long cs = clusterSize(options);
            for (int i = 0; i < 6; i++) {
                long at = cs * (i * (SIZE / cs / 6) + r.nextInt((int) (SIZE / cs / 6)));
                cmds.add("write -c -P 0x" + Integer.toHexString(1 + r.nextInt(255)) + " " + at + " " + cs);
            }
            cmds.addAll(QemuImages.randomWrites(seed + 1, SIZE, 512, 200_000, 20, !options.contains("0.10")));
            List<String> cmd = new ArrayList<>(List.of(Peers.require("qemu-io"), "-f", "qcow2"));
            for (String c : cmds) {
                cmd.add("-c");
                cmd.add(c);
            }
            cmd.add(img.toString());
            Peers.Result filled = Peers.run(120, cmd);
            assertThat(filled.exit()).as("qemu-io prefill: %s", filled.out()).isZero();
        }
        byte[] shadow = qemuRaw(img);
        byte[] snapshotBytes = shadow.clone();
        if (snapshot) {
            // Every cluster is shared with the snapshot now: each first write copies it.
            qemuImg("snapshot", "-c", "s1", img.toString());
        }
        boolean v3 = !options.contains("0.10");
        long cs = clusterSize(options);

        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(
                "file=" + img + ",format=qcow2,discard=unmap,cache=writeback"))) {
            for (int i = 0; i < 80; i++) {
                int op = r.nextInt(11);
                long len = 1 + r.nextInt((int) Math.min(SIZE / 4, 3 * cs + 5000));
                if (r.nextBoolean()) {
                    len = (len + 511) & -512L;
                }
                len = Math.min(len, SIZE);
                long off = r.nextInt((int) (SIZE - len + 1));
                if (r.nextBoolean()) {
                    off &= -512L;
                }
                if (op < 6) {
                    byte[] data = new byte[(int) len];
                    r.nextBytes(data);
                    d.write(off, ByteBuffer.wrap(data), WriteFlags.NONE);
                    System.arraycopy(data, 0, shadow, (int) off, (int) len);
                } else if (op < 8) {
                    int flags = r.nextBoolean() ? WriteFlags.MAY_UNMAP : WriteFlags.NONE;
                    d.writeZeroes(off, len, flags);
                    Arrays.fill(shadow, (int) off, (int) (off + len), (byte) 0);
                } else if (op == 8) {
                    d.discard(off, len);
                    long start = (off + cs - 1) & -cs;
                    long end = off + len == SIZE ? SIZE : (off + len) & -cs;
                    for (long p = start; p < end; p++) {
                        shadow[(int) p] = v3 ? 0 : backingBytes[(int) p];
                    }
                } else if (op == 9) {
                    d.flush();
                } else if (!options.contains("data_file")) {
                    compressedWrite(d, r, cs, shadow);
                }
            }
            byte[] back = QemuImages.readAll(d, 1 << 20);
            QemuImages.assertSameBytes(back, shadow, "jblock reads what it wrote (seed " + seed + ")");
        }
        assertCleanAndEqual(img, shadow, seed);
        Qcow2BlockStatusInteropTest.assertMapsAsQemu(img, withBacking ? 2 : 1);
        if (snapshot) {
            qemuImg("snapshot", "-a", "s1", img.toString());
            QemuImages.assertSameBytes(qemuRaw(img), snapshotBytes, "the snapshot's bytes (seed " + seed + ")");
            assertCleanAndEqual(img, snapshotBytes, seed);
        }
        if (options.contains("data_file_raw=on")) {
            QemuImages.assertSameBytes(Files.readAllBytes(dataFile), shadow, "the raw data file (seed " + seed + ")");
        }
    }

    @Test
    void concurrentWritersOnOneFreshImageKeepEveryByte() throws Exception {
        long seed = new Random().nextLong();
        System.out.println("qcow2 concurrent writers: seed " + seed);
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", img.toString(), Long.toString(SIZE));
        byte[] shadow = new byte[(int) SIZE];
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(
                "file=" + img + ",format=qcow2,cache=writeback"))) {
            List<Future<?>> done = new ArrayList<>();
            try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int t = 0; t < 16; t++) {
                    int thread = t;
                    done.add(pool.submit(() -> {
                        Random r = new Random(seed + thread);
                        // Each thread owns every 16th 1 KiB piece: writers share clusters, never bytes.
                        for (int i = 0; i < 150; i++) {
                            long piece = (long) r.nextInt((int) (SIZE / 1024 / 16)) * 16 + thread;
                            byte[] data = new byte[1024];
                            if (r.nextInt(5) == 0) {
                                // Zeroes too: a partial cluster is zeroed in place only while the rest reads zero.
                                d.writeZeroes(piece * 1024, 1024, r.nextBoolean() ? WriteFlags.MAY_UNMAP : 0);
                            } else {
                                r.nextBytes(data);
                                d.write(piece * 1024, ByteBuffer.wrap(data), WriteFlags.NONE);
                            }
                            synchronized (shadow) {
                                System.arraycopy(data, 0, shadow, (int) (piece * 1024), 1024);
                            }
                        }
                        return null;
                    }));
                }
            }
            for (Future<?> f : done) {
                f.get();
            }
            QemuImages.assertSameBytes(QemuImages.readAll(d, 1 << 20), shadow, "read back (seed " + seed + ")");
        }
        assertCleanAndEqual(img, shadow, seed);
    }

    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"cluster_size=512", "compat=0.10,cluster_size=512",
            "extended_l2=on,cluster_size=16k", "refcount_bits=1,cluster_size=1k"})
    void growShrinkAndPreallocatedGrowthLeaveCleanImages(String options) throws Exception {
        long seed = Long.getLong("qcow2.seed", new Random().nextLong());
        System.out.println("qcow2 resize: " + options + " seed " + seed);
        Random r = new Random(seed);
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), Long.toString(SIZE));
        byte[] shadow = new byte[(int) (2 * SIZE)];
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"))) {
            randomWrites(d, r, shadow, SIZE);
            d.truncate(2 * SIZE, false, io.jblock.block.Prealloc.OFF); // L1 grows: the new area reads as zero
            randomWrites(d, r, shadow, 2 * SIZE);
        }
        assertCleanAndEqual(img, shadow, seed);

        long small = SIZE / 2 + 3 * 512;
        byte[] shrunk = Arrays.copyOf(shadow, (int) small);
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"))) {
            d.truncate(small, true, io.jblock.block.Prealloc.OFF);
            randomWrites(d, r, shrunk, small);
        }
        assertCleanAndEqual(img, shrunk, seed);

        byte[] grown = Arrays.copyOf(shrunk, (int) SIZE);
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"))) {
            d.truncate(SIZE, false, io.jblock.block.Prealloc.METADATA);
            randomWrites(d, r, grown, SIZE);
        }
        assertCleanAndEqual(img, grown, seed);
        Qcow2BlockStatusInteropTest.assertMapsAsQemu(img, 1);

        byte[] full = Arrays.copyOf(grown, (int) (2 * SIZE));
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"))) {
            d.truncate(SIZE + SIZE / 2, false, io.jblock.block.Prealloc.FALLOC);
            d.truncate(2 * SIZE, false, io.jblock.block.Prealloc.FULL);
            randomWrites(d, r, full, 2 * SIZE);
        }
        assertCleanAndEqual(img, full, seed);
        Qcow2BlockStatusInteropTest.assertMapsAsQemu(img, 1);
    }

    @Test
    void resizeRulesAsQemu() throws Exception {
        Path v2 = dir.resolve("v2.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2.toString(), "4M");
        qemuImg("snapshot", "-c", "s1", v2.toString());
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + v2 + ",format=qcow2"))) {
            org.assertj.core.api.Assertions.assertThatThrownBy(
                    () -> d.truncate(8L << 20, false, io.jblock.block.Prealloc.OFF))
                    .hasMessage("Can't resize a v2 image which has snapshots");
        }
        Path v3 = dir.resolve("v3.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", v3.toString(), "4M");
        qemuIo(v3, List.of("write -P 0x21 0 4M"));
        qemuImg("snapshot", "-c", "s1", v3.toString());
        byte[] shadow = new byte[2 << 20];
        Arrays.fill(shadow, (byte) 0x21);
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + v3 + ",format=qcow2"))) {
            org.assertj.core.api.Assertions.assertThatThrownBy(
                    () -> d.truncate(1000, false, io.jblock.block.Prealloc.OFF))
                    .hasMessage("The new size must be a multiple of 512");
            org.assertj.core.api.Assertions.assertThatThrownBy(
                    () -> d.truncate(1 << 20, false, io.jblock.block.Prealloc.METADATA))
                    .hasMessage("Preallocation can't be used for shrinking an image");
            // A version 3 image shrinks with its snapshot: the shared tables are copied, the snapshot keeps its data.
            d.truncate(2 << 20, true, io.jblock.block.Prealloc.OFF);
            d.write(0, ByteBuffer.wrap(new byte[]{5}), WriteFlags.NONE);
        }
        shadow[0] = 5;
        assertCleanAndEqual(v3, shadow, 0);
        qemuImg("snapshot", "-a", "s1", v3.toString());
        byte[] old = qemuRaw(v3);
        assertThat(old.length).as("the snapshot's size").isEqualTo(4 << 20);
        byte[] want = new byte[4 << 20];
        Arrays.fill(want, (byte) 0x21);
        QemuImages.assertSameBytes(old, want, "the snapshot's data after the active image shrank");
    }

    private static void randomWrites(Drive d, Random r, byte[] shadow, long size) throws Exception {
        for (int i = 0; i < 30; i++) {
            int len = 1 + r.nextInt(40_000);
            long off = (long) (r.nextDouble() * (size - len));
            byte[] data = new byte[len];
            r.nextBytes(data);
            d.write(off, ByteBuffer.wrap(data), WriteFlags.NONE);
            System.arraycopy(data, 0, shadow, (int) off, len);
        }
    }

    /**
     * A compressible cluster written with COMPRESSED at a random cluster: QEMU
     * refuses (EIO) where the cluster is allocated, and so does jblock.
     */
    private static void compressedWrite(Drive d, Random r, long cs, byte[] shadow) throws Exception {
        long at = cs * r.nextInt((int) (SIZE / cs));
        byte[] data = new byte[(int) cs];
        Arrays.fill(data, (byte) r.nextInt(256));
        for (int k = 0; k < 20; k++) {
            data[r.nextInt(data.length)] = (byte) r.nextInt(256);
        }
        boolean allocated = d.blockStatus(at, cs).isData() && d.blockStatus(at, cs).depth() == 1;
        try {
            d.write(at, ByteBuffer.wrap(data), WriteFlags.COMPRESSED);
            System.arraycopy(data, 0, shadow, (int) at, data.length);
        } catch (io.jblock.block.BlockException e) {
            assertThat(e.errno()).as("compressed write refused at %d: %s", at, e.getMessage())
                    .isEqualTo(io.jblock.block.Errno.EIO);
            // With extended L2 a cluster may have a host cluster and still map (partly) as unallocated.
            assertThat(allocated || d.blockStatus(at, cs).depth() == 1 || cs > 512 && clusterHasSubclusters(d))
                    .as("refused only over an allocated cluster").isTrue();
        }
    }

    private static boolean clusterHasSubclusters(Drive d) throws Exception {
        return "true".equals(String.valueOf(d.root().info().formatSpecific().get("extended-l2")));
    }

    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"cluster_size=512,refcount_bits=64",
            "cluster_size=512,refcount_bits=1", "cluster_size=1k,refcount_bits=32"})
    void largeWritesWithSmallRefcountBlocksGetTheirBlocksOutsideTheRun(String options) throws Exception {
        // A refcount block here counts only 64 clusters: blocks placed inside their own range would break
        // every run of 64 new clusters, and the search would chase the end of the table forever.
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), "16M");
        byte[] shadow = new byte[16 << 20];
        Random r = new Random(42);
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"))) {
            for (long off : new long[]{1799680, 5 << 20, 12345 * 512L, 0}) {
                byte[] data = new byte[1 << 20];
                r.nextBytes(data);
                d.write(off, ByteBuffer.wrap(data), WriteFlags.NONE);
                System.arraycopy(data, 0, shadow, (int) off, data.length);
            }
        }
        assertCleanAndEqual(img, shadow, 42);
        assertThat(Files.size(img)).as("the image file stays near its data").isLessThan(8L << 20);
    }

    @Test
    void theL2CacheStaysBoundedWhileWritingManyTables() throws Exception {
        Path img = dir.resolve("big.qcow2");
        // 512-byte clusters: one 512-byte slice maps 32 KiB, so 3000 far-apart writes touch 3000 slices.
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", img.toString(), "128M");
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(
                "file=" + img + ",format=qcow2,cache=writeback"))) {
            Qcow2Node q = (Qcow2Node) d.root();
            for (int i = 0; i < 3000; i++) {
                d.write(i * 32768L + 7, ByteBuffer.wrap(new byte[]{(byte) (i | 1)}), WriteFlags.NONE);
                assertThat(q.cachedL2Slices()).isLessThanOrEqualTo(q.l2CacheCapacity());
            }
            assertThat(q.l2CacheCapacity()).as("the workload outgrew the cache").isLessThan(3000);
        }
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.out()).contains("No errors were found on the image.").doesNotContain("leaked");
        byte[] guest = qemuRaw(img);
        for (int i = 0; i < 3000; i++) {
            assertThat(guest[i * 32768 + 7]).as("byte of write %d", i).isEqualTo((byte) (i | 1));
        }
    }

    private static long clusterSize(String options) {
        for (String o : options.split(",")) {
            if (o.startsWith("cluster_size=")) {
                String v = o.substring("cluster_size=".length());
                long unit = v.endsWith("k") ? 1024 : v.endsWith("M") ? 1 << 20 : 1;
                return Long.parseLong(unit == 1 ? v : v.substring(0, v.length() - 1)) * unit;
            }
        }
        return 65536;
    }

    private void assertCleanAndEqual(Path img, byte[] shadow, long seed) throws Exception {
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as("qemu-img check exit (seed %d): %s %s", seed, check.out(), check.err())
                .isZero();
        assertThat(check.out()).as("qemu-img check (seed %d)", seed)
                .contains("No errors were found on the image.").doesNotContain("leaked");
        Path raw = dir.resolve("shadow.raw");
        Files.write(raw, shadow);
        Peers.Result cmp = Peers.run(120, List.of(Peers.require("qemu-img"), "compare", "-f", "qcow2", "-F", "raw",
                img.toString(), raw.toString()));
        assertThat(cmp.exit()).as("qemu-img compare (seed %d): %s", seed, cmp.out()).isZero();
    }
}
