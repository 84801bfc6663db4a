package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;
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
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Concurrent guest writes, zero writes, discards and flushes on a qcow2 image
 * opened with O_DIRECT and clusters smaller than the direct-I/O alignment, from
 * platform threads (pread/pwrite/fdatasync through FFM) and virtual threads
 * (FileChannel) at once: clusters are allocated at the end of the file by
 * unaligned writes (padded, then the file cut back) while other clusters are
 * zeroed there by fallocate, and the file node keeps its cached length. The
 * image must read back as the shadow, be clean for {@code qemu-img check} and
 * equal to the shadow for {@code qemu-img compare}.
 */
class Qcow2DirectConcurrentWriteTest {
    private static final long SIZE = 4L << 20;
    private static final int PIECE = 32 << 10;
    private static final int THREADS = 8;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"cluster_size=512", "cluster_size=2k", "cluster_size=16k,extended_l2=on",
            "cluster_size=1k,lazy_refcounts=on"})
    void everyByteSurvivesMixedThreadsUnderODirect(String options) throws Exception {
        long seed = Long.getLong("qcow2.seed", new Random().nextLong());
        System.out.println("qcow2 O_DIRECT concurrent writers: " + options + " seed " + seed);
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), Long.toString(SIZE));
        byte[] shadow = new byte[(int) SIZE];
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(
                "file=" + img + ",format=qcow2,cache=none,aio=threads,discard=unmap"))) {
            List<Future<?>> done = new ArrayList<>();
            ExecutorService platform = Executors.newFixedThreadPool(THREADS / 2);
            ExecutorService virtual = Executors.newVirtualThreadPerTaskExecutor();
            try {
                for (int t = 0; t < THREADS; t++) {
                    int thread = t;
                    Callable<Void> work = () -> {
                        Random r = new Random(seed + thread);
                        // Each thread owns every THREADS-th piece, so the shadow is exact; pieces share
                        // slices, refcount blocks and the end of the file with the other threads.
                        for (int i = 0; i < 60; i++) {
                            long piece = (long) r.nextInt((int) (SIZE / PIECE / THREADS)) * THREADS + thread;
                            int from = r.nextInt(PIECE);
                            int len = 1 + r.nextInt(PIECE - from);
                            long at = piece * PIECE + from;
                            int op = r.nextInt(10);
                            if (op < 6) {
                                byte[] data = new byte[len];
                                r.nextBytes(data);
                                d.write(at, ByteBuffer.wrap(data), WriteFlags.NONE);
                                synchronized (shadow) {
                                    System.arraycopy(data, 0, shadow, (int) at, len);
                                }
                            } else if (op < 8) {
                                d.writeZeroes(at, len, r.nextBoolean() ? WriteFlags.MAY_UNMAP : WriteFlags.NONE);
                                synchronized (shadow) {
                                    Arrays.fill(shadow, (int) at, (int) at + len, (byte) 0);
                                }
                            } else if (op < 9) {
                                // Whole clusters only are discarded (then read as zeroes in v3); the rest stays.
                                d.discard(at, len);
                                long cs = clusterSize(options);
                                long first = (at + cs - 1) / cs * cs;
                                long end = (at + len) / cs * cs;
                                if (end > first) {
                                    synchronized (shadow) {
                                        Arrays.fill(shadow, (int) first, (int) end, (byte) 0);
                                    }
                                }
                            } else {
                                d.flush();
                            }
                        }
                        return null;
                    };
                    done.add((thread % 2 == 0 ? platform : virtual).submit(work));
                }
                for (Future<?> f : done) {
                    f.get();
                }
            } finally {
                platform.shutdown();
                virtual.shutdown();
            }
            assertThat(d.length()).isEqualTo(SIZE);
            QemuImages.assertSameBytes(QemuImages.readAll(d, 1 << 20), shadow, "read back (seed " + seed + ")");
        }
        Peers.Result check = Peers.run(120, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as("qemu-img check exit (seed %d): %s %s", seed, check.out(), check.err())
                .isZero();
        assertThat(check.out()).as("qemu-img check (seed %d)", seed).contains("No errors were found on the image.");
        Path raw = dir.resolve("shadow.raw");
        Files.write(raw, shadow);
        Peers.Result cmp = Peers.run(120, List.of(Peers.require("qemu-img"), "compare", "-f", "qcow2", "-F", "raw",
                img.toString(), raw.toString()));
        assertThat(cmp.exit()).as("qemu-img compare (seed %d): %s", seed, cmp.out()).isZero();
    }

    private static long clusterSize(String options) {
        for (String o : options.split(",")) {
            if (o.startsWith("cluster_size=")) {
                String v = o.substring(13);
                return v.endsWith("k") ? Long.parseLong(v.substring(0, v.length() - 1)) * 1024 : Long.parseLong(v);
            }
        }
        return 65536;
    }
}
