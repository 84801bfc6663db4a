package io.jblock.engine;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
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
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Drives opened with aio=io_uring and aio=native run on the io_uring engine, through the whole block layer. */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class IoUringDriveTest {
    private static final int SIZE = 4 << 20;

    @TempDir
    Path dir;

    /** The completion threads of rings open on {@code img}: one per open file node on the io_uring engine. */
    private static long ringThreadsOn(Path img) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals("jblock-io_uring " + img))
                .count();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"aio=io_uring", "cache=none,aio=native", "cache=none,aio=io_uring"})
    void concurrentRandomReadsAndWritesThroughADriveMatchAShadowCopy(String options) throws Exception {
        long seed = System.nanoTime();
        System.out.println("IoUringDriveTest seed=" + seed + " " + options);
        Path img = dir.resolve("d.img");
        Files.write(img, new byte[SIZE]);
        byte[] shadow = new byte[SIZE];
        int threads = 32;
        int region = SIZE / threads;
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=raw," + options));
             var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            assertThat(ringThreadsOn(img)).as("a ring serves the drive").isEqualTo(1);
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int base = t * region;
                Random rnd = new Random(seed + t);
                done.add(pool.submit(() -> {
                    for (int i = 0; i < 30; i++) {
                        int off = base + rnd.nextInt(region - 1);
                        int len = 1 + rnd.nextInt(Math.min(region - (off - base), 32 << 10));
                        byte[] data = new byte[len];
                        rnd.nextBytes(data);
                        d.write(off, ByteBuffer.wrap(data), 0);
                        System.arraycopy(data, 0, shadow, off, len);
                        int roff = base + rnd.nextInt(region - 1);
                        int rlen = 1 + rnd.nextInt(region - (roff - base));
                        ByteBuffer dst = ByteBuffer.allocate(rlen);
                        d.read(roff, dst);
                        assertThat(dst.array()).as("seed %d: read %d+%d", seed, roff, rlen)
                                .isEqualTo(Arrays.copyOfRange(shadow, roff, roff + rlen));
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(100, TimeUnit.SECONDS);
            }
            d.flush();
        }
        assertThat(ringThreadsOn(img)).as("no completion thread left after close").isZero();
        assertThat(Files.readAllBytes(img)).as("seed %d: the image", seed).isEqualTo(shadow);
    }

    @Test
    void nativeAioStillRequiresCacheDirect() {
        Path img = dir.resolve("n.img");
        assertThatThrownBy(() -> {
            Files.write(img, new byte[4096]);
            DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=raw,aio=native")).close();
        }).isInstanceOf(BlockException.class)
                .hasMessageContaining("aio=native was specified, but it requires cache.direct=on");
    }
}
