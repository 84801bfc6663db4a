package io.jblock.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.Arena;
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

/** The io_uring engine on its own, against real files: data, durability calls, errors and shutdown. */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class IoUringEngineTest {
    private static final int FILE_SIZE = 4 << 20;

    @TempDir
    Path dir;

    private Path file(int size) throws IOException {
        Path p = dir.resolve("f.img");
        Files.write(p, new byte[size]);
        return p;
    }

    @Test
    void theEngineIsAvailableOnThisKernelAndNamedIoUring() throws Exception {
        assertThat(IoUringEngine.instance().name()).isEqualTo("io_uring");
    }

    @Test
    void aRingSetupTheKernelRefusesFailsWithItsErrno() {
        // 0 entries is EINVAL: the same path as ENOSYS or EPERM, which this machine cannot produce.
        assertThatThrownBy(() -> IoUring.create(0)).isInstanceOfSatisfying(ErrnoException.class,
                e -> assertThat(e.errno()).isEqualTo(Libc.EINVAL));
    }

    /**
     * Many virtual threads at once, each writing and reading random ranges
     * of its own region (so the expected content is known) with direct and
     * heap buffers, checked against a shadow copy, then the whole file
     * against the shadow.
     */
    @ParameterizedTest(name = "O_DIRECT={0}")
    @ValueSource(booleans = {false, true})
    void concurrentRandomReadsAndWritesMatchAShadowCopy(boolean direct) throws Exception {
        long seed = System.nanoTime();
        System.out.println("IoUringEngineTest seed=" + seed + " direct=" + direct);
        Path p = file(FILE_SIZE);
        byte[] shadow = new byte[FILE_SIZE];
        int threads = 64;
        int region = FILE_SIZE / threads;
        try (EngineFile f = IoUringEngine.instance().open(p, false, direct);
             var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            AlignedAccess access = new AlignedAccess(f);
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int base = t * region;
                Random rnd = new Random(seed + t);
                done.add(pool.submit(() -> {
                    for (int i = 0; i < 40; i++) {
                        int off = base + rnd.nextInt(region - 1);
                        int len = 1 + rnd.nextInt(Math.min(region - (off - base), 64 << 10));
                        byte[] data = new byte[len];
                        rnd.nextBytes(data);
                        ByteBuffer src = rnd.nextBoolean() ? ByteBuffer.wrap(data)
                                : ByteBuffer.allocateDirect(len).put(data).flip();
                        access.write(off, src);
                        System.arraycopy(data, 0, shadow, off, len);
                        int roff = base + rnd.nextInt(region - 1);
                        int rlen = 1 + rnd.nextInt(region - (roff - base));
                        ByteBuffer dst = rnd.nextBoolean() ? ByteBuffer.allocate(rlen)
                                : ByteBuffer.allocateDirect(rlen);
                        access.read(roff, dst);
                        byte[] got = new byte[rlen];
                        dst.flip().get(got);
                        assertThat(got).as("seed %d: read %d+%d", seed, roff, rlen)
                                .isEqualTo(Arrays.copyOfRange(shadow, roff, roff + rlen));
                    }
                    return null;
                }));
            }
            for (Future<?> d : done) {
                d.get(100, TimeUnit.SECONDS);
            }
            f.datasync();
        }
        assertThat(Files.readAllBytes(p)).as("seed %d: the file after close", seed).isEqualTo(shadow);
    }

    @Test
    void moreRequestsThanTheRingHoldsWaitForASlotAndAllComplete() throws Exception {
        Path p = file(1 << 20);
        int requests = IoUringEngine.RING_ENTRIES * 8;
        try (EngineFile f = IoUringEngine.instance().open(p, false, false);
             var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Integer>> done = new ArrayList<>();
            for (int i = 0; i < requests; i++) {
                int n = i;
                done.add(pool.submit(() -> f.write(ByteBuffer.allocateDirect(512).put(0, (byte) n), (n % 2048) * 512L)));
            }
            for (Future<Integer> d : done) {
                assertThat(d.get(100, TimeUnit.SECONDS)).isEqualTo(512);
            }
        }
    }

    @Test
    void writesAreVisibleToOtherReadersAfterDatasync() throws Exception {
        Path p = file(8192);
        try (EngineFile f = IoUringEngine.instance().open(p, false, false)) {
            f.write(ByteBuffer.wrap("hello".getBytes()), 100);
            f.datasync();
            assertThat(Arrays.copyOfRange(Files.readAllBytes(p), 100, 105)).isEqualTo("hello".getBytes());
        }
    }

    @Test
    void aReadAcrossTheEndOfTheFileIsShortAndAReadPastItIsMinusOne() throws Exception {
        Path p = dir.resolve("small");
        Files.write(p, new byte[]{1, 2, 3, 4, 5});
        try (EngineFile f = IoUringEngine.instance().open(p, true, false)) {
            ByteBuffer b = ByteBuffer.allocateDirect(100);
            assertThat(f.read(b, 2)).isEqualTo(3);
            assertThat(b.position()).isEqualTo(3);
            assertThat(b.get(0)).isEqualTo((byte) 3);
            assertThat(f.read(ByteBuffer.allocate(10), 5)).isEqualTo(-1);
            assertThat(f.read(ByteBuffer.allocate(10), 1000)).isEqualTo(-1);
        }
    }

    @Test
    void aDirectReadAtTheEndOfTheFileStopsAtTheEnd() throws Exception {
        Path p = dir.resolve("odd");
        byte[] data = new byte[4096 + 100];
        Arrays.fill(data, (byte) 7);
        Files.write(p, data);
        try (EngineFile f = IoUringEngine.instance().open(p, true, true); Arena arena = Arena.ofConfined()) {
            ByteBuffer b = arena.allocate(8192, 4096).asByteBuffer();
            assertThat(f.read(b, 0)).isEqualTo(4196);
        }
    }

    @Test
    void writingAFileOpenedReadOnlyIsAnIoExceptionWithTheErrno() throws Exception {
        Path p = file(4096);
        try (EngineFile f = IoUringEngine.instance().open(p, true, false)) {
            assertThatThrownBy(() -> f.write(ByteBuffer.allocateDirect(10), 0))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(9))
                    .hasMessage("write failed: Bad file descriptor");
        }
    }

    @Test
    void aMisalignedDirectReadIsAnIoExceptionWithTheErrno() throws Exception {
        Path p = file(1 << 16);
        try (EngineFile f = IoUringEngine.instance().open(p, true, true); Arena arena = Arena.ofConfined()) {
            ByteBuffer b = arena.allocate(8192, 4096).asByteBuffer().limit(4096);
            assertThatThrownBy(() -> f.read(b, 1)).isInstanceOfSatisfying(ErrnoException.class,
                    e -> assertThat(e.errno()).isEqualTo(Libc.EINVAL));
        }
    }

    @Test
    void requestsAfterCloseFailWithEbadfAndTheCompletionThreadIsGone() throws Exception {
        Path p = file(4096);
        EngineFile f = IoUringEngine.instance().open(p, false, false);
        IoUringRing ring = ((IoUringFile) f).ring();
        assertThat(ring.completerAlive()).isTrue();
        f.close();
        assertThat(ring.completerAlive()).isFalse();
        assertThatThrownBy(() -> f.read(ByteBuffer.allocateDirect(10), 0))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(9));
    }

    @Test
    void fallocateModesGoThroughTheRing() throws Exception {
        Path p = dir.resolve("space");
        byte[] data = new byte[1 << 20];
        Arrays.fill(data, (byte) 0x5a);
        Files.write(p, data);
        try (EngineFile f = IoUringEngine.instance().open(p, false, false)) {
            assertThat(f.punchHole(0, 65536)).isTrue();
            assertThat(f.zeroRange(65536, 4096, true)).isTrue();
            assertThat(f.allocate(1 << 20, 4096)).isTrue();
            assertThat(f.size()).isEqualTo((1 << 20) + 4096);
            assertThat(f.seekData(0)).isEqualTo(65536);
        }
        byte[] after = Files.readAllBytes(p);
        assertThat(Arrays.copyOfRange(after, 0, 65536 + 4096)).containsOnly(0);
        assertThat(after[65536 + 4096]).isEqualTo((byte) 0x5a);
    }
}
