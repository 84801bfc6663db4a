package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import io.jblock.options.DriverRegistry;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.GraphOpener;
import io.jblock.testing.CountingEngine;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuRaw;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Writes that span many clusters and L2 slices: runs of owned clusters are
 * written in place in one data write per contiguous host run, runs of empty
 * clusters are allocated together, and everything else (shared, compressed,
 * zero-flagged, partly allocated clusters) falls back to one cluster at a
 * time. Seeded workloads against a shadow copy; then {@code qemu-img check}
 * is clean and {@code qemu-img compare} finds the shadow's bytes.
 */
class Qcow2MultiClusterWriteTest {
    private static final long SIZE = 8L << 20;

    @TempDir
    Path dir;

    /**
     * qemu-img create options; "+snapshot" takes an internal snapshot first (every cluster shared),
     * "+backing" puts a backing file with data under the image, "+hole" writes zeroes over some
     * preallocated clusters (entries with the zero flag inside runs).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
            "preallocation=metadata",
            "preallocation=metadata,cluster_size=4k",
            "preallocation=metadata,cluster_size=512+hole",
            "preallocation=falloc,cluster_size=16k",
            "preallocation=metadata,extended_l2=on,cluster_size=32k+hole",
            "compat=0.10,preallocation=metadata,cluster_size=1k",
            "cluster_size=512",
            "cluster_size=4k+backing",
            "extended_l2=on,cluster_size=16k+backing",
            "preallocation=metadata,cluster_size=2k+snapshot",
            "preallocation=metadata,data_file=@,cluster_size=4k",
            "lazy_refcounts=on,preallocation=metadata,cluster_size=8k+hole"})
    void manyClusterWritesLeaveACleanImageWithTheShadowsBytes(String variant) throws Exception {
        long seed = Long.getLong("qcow2.seed", new Random().nextLong()); // -Dqcow2.seed=N replays a run
        System.out.println("qcow2 multi-cluster writes: " + variant + " seed " + seed);
        Random r = new Random(seed);
        boolean snapshot = variant.contains("+snapshot");
        boolean backing = variant.contains("+backing");
        boolean hole = variant.contains("+hole");
        String options = variant.replaceAll("\\+.*", "").replace("@", dir.resolve("data.raw").toString());
        long cs = clusterSize(options);
        Path img = dir.resolve("img.qcow2");
        List<String> create = new ArrayList<>(List.of("create", "-q", "-f", "qcow2", "-o", options));
        byte[] shadow = new byte[(int) SIZE];
        if (backing) {
            Path base = dir.resolve("base.qcow2");
            qemuImg("create", "-q", "-f", "qcow2", base.toString(), Long.toString(SIZE));
            QemuImages.qemuIo(base, QemuImages.randomWrites(seed, SIZE, 512, 600_000, 20, false));
            shadow = qemuRaw(base);
            create.addAll(List.of("-b", base.getFileName().toString(), "-F", "qcow2"));
        }
        create.addAll(List.of(img.toString(), Long.toString(SIZE)));
        qemuImg(create.toArray(String[]::new));
        if (snapshot) {
            QemuImages.qemuIo(img, QemuImages.randomWrites(seed + 1, SIZE, 512, 600_000, 10, true));
            shadow = qemuRaw(img);
            qemuImg("snapshot", "-c", "s1", img.toString());
        }
        byte[] snapshotBytes = shadow.clone();
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(
                "file=" + img + ",format=qcow2,cache=writeback"))) {
            if (hole) {
                // Zero-flagged entries among preallocated ones: a run must stop at them.
                for (int i = 0; i < 12; i++) {
                    long at = cs * r.nextInt((int) (SIZE / cs));
                    long n = Math.min(cs * (1 + r.nextInt(3)), SIZE - at);
                    d.writeZeroes(at, n, WriteFlags.NONE);
                    Arrays.fill(shadow, (int) at, (int) (at + n), (byte) 0);
                }
            }
            for (int i = 0; i < 60; i++) {
                // From a few bytes to ~70 clusters (several slices with small clusters), aligned or not.
                long len = 1 + r.nextInt((int) Math.min(SIZE / 4, 70 * cs));
                if (r.nextInt(3) == 0) {
                    len = Math.max(cs, len / cs * cs);
                }
                long off = (long) (r.nextDouble() * (SIZE - len));
                if (r.nextBoolean()) {
                    off = off / cs * cs;
                }
                if (r.nextInt(8) == 0) {
                    d.flush();
                }
                byte[] data = new byte[(int) len];
                r.nextBytes(data);
                d.write(off, ByteBuffer.wrap(data), WriteFlags.NONE);
                System.arraycopy(data, 0, shadow, (int) off, (int) len);
            }
            QemuImages.assertSameBytes(QemuImages.readAll(d, 1 << 20), shadow,
                    "jblock reads what it wrote (seed " + seed + ")");
        }
        assertCleanAndEqual(img, shadow, seed);
        if (snapshot) {
            qemuImg("snapshot", "-a", "s1", img.toString());
            QemuImages.assertSameBytes(qemuRaw(img), snapshotBytes, "the snapshot's bytes (seed " + seed + ")");
        }
    }

    @Test
    void concurrentMultiClusterWritersKeepEveryByte() throws Exception {
        long seed = new Random().nextLong();
        System.out.println("qcow2 concurrent multi-cluster writers: seed " + seed);
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=1k", img.toString(), Long.toString(SIZE));
        byte[] shadow = new byte[(int) SIZE];
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(
                "file=" + img + ",format=qcow2,cache=writeback"))) {
            List<Future<?>> done = new ArrayList<>();
            try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int t = 0; t < 8; t++) {
                    int thread = t;
                    done.add(pool.submit(() -> {
                        Random r = new Random(seed + thread);
                        // Each thread owns every 8th 64 KiB piece: requests of many clusters, sharing slices
                        // (a 1 KiB slice maps 128 KiB) and refcount blocks with the other threads.
                        for (int i = 0; i < 40; i++) {
                            long piece = (long) r.nextInt((int) (SIZE / 65536 / 8)) * 8 + thread;
                            int from = r.nextInt(65536);
                            int len = 1 + r.nextInt(65536 - from);
                            byte[] data = new byte[len];
                            r.nextBytes(data);
                            d.write(piece * 65536 + from, ByteBuffer.wrap(data), WriteFlags.NONE);
                            synchronized (shadow) {
                                System.arraycopy(data, 0, shadow, (int) (piece * 65536 + from), len);
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

    @Test
    void aRunOfPreallocatedClustersIsOneDataWriteAndOneRead() throws Exception {
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", img.toString(), "64M");
        CountingEngine engine = new CountingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(),
                CountingEngine.provider(engine)));
        byte[] data = new byte[1 << 20];
        new Random(7).nextBytes(data);
        try (Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=qcow2,cache=writeback,aio=threads"))) {
            d.write(3L << 20, ByteBuffer.wrap(new byte[1]), WriteFlags.NONE); // the L2 slice is cached now
            long before = engine.writes();
            for (int i = 0; i < 8; i++) {
                d.write((4L + i) << 20, ByteBuffer.wrap(data), WriteFlags.NONE);
            }
            // 16 clusters of 64 KiB each, contiguous in the file as preallocation laid them out.
            assertThat(engine.writes() - before).as("file writes for eight 1 MiB writes").isEqualTo(8);
            ByteBuffer back = ByteBuffer.allocate(1 << 20);
            long reads = engine.reads();
            d.read(9L << 20, back);
            assertThat(back.array()).isEqualTo(data);
            assertThat(engine.reads() - reads).as("file reads for a 1 MiB read of contiguous clusters").isEqualTo(1);
        }
        byte[] shadow = qemuRaw(img);
        for (int i = 0; i < 8; i++) {
            assertThat(Arrays.copyOfRange(shadow, (4 + i) << 20, (5 + i) << 20)).isEqualTo(data);
        }
    }

    @Test
    void aFreshRunIsOneAllocationOneDataWriteAndOneSliceUpdate() throws Exception {
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "64M");
        CountingEngine engine = new CountingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(),
                CountingEngine.provider(engine)));
        byte[] data = new byte[1 << 20];
        new Random(8).nextBytes(data);
        try (Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=qcow2,cache=writeback,aio=threads"))) {
            d.write(0, ByteBuffer.wrap(new byte[1]), WriteFlags.NONE); // the L2 table exists now
            d.flush();
            long before = engine.writes();
            d.write(1L << 20, ByteBuffer.wrap(data), WriteFlags.NONE);
            assertThat(engine.writes() - before).as("file writes before the flush").isEqualTo(1);
            before = engine.writes();
            d.flush();
            // One L2 slice and one refcount block, nothing per cluster.
            assertThat(engine.writes() - before).as("metadata writes of the flush").isEqualTo(2);
        }
        byte[] shadow = qemuRaw(img);
        assertThat(Arrays.copyOfRange(shadow, 1 << 20, 2 << 20)).isEqualTo(data);
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.out()).contains("No errors were found on the image.");
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