package io.jblock.protocol;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * cache.direct=on: any offset, length and buffer works, checked byte for byte
 * against a shadow copy of what the file should hold.
 */
class FileDirectIoTest {
    private static final int SIZE = 4 << 20;

    @TempDir
    Path dir;

    private Path initialFile(Random rnd, byte[] shadow) throws Exception {
        rnd.nextBytes(shadow);
        Path p = dir.resolve("direct.img");
        Files.write(p, shadow);
        return p;
    }

    /** A buffer of one of the kinds callers pass: heap, direct, or a slice of either at an odd address. */
    private static ByteBuffer anyBuffer(Random rnd, int len) {
        int skew = rnd.nextBoolean() ? 0 : 1 + rnd.nextInt(511);
        ByteBuffer b = rnd.nextBoolean() ? ByteBuffer.allocate(len + skew) : ByteBuffer.allocateDirect(len + skew);
        return b.position(skew).slice();
    }

    private static long unalignedOffset(Random rnd, long max) {
        return (long) (rnd.nextDouble() * max);
    }

    @Test
    void theProbedAlignmentIsReportedAsTheRequestAlignment() throws Exception {
        Path p = dir.resolve("a.img");
        Files.write(p, new byte[65536]);
        try (FileNode direct = FileTestSupport.open(p, true); FileNode buffered = FileTestSupport.open(p, false)) {
            assertThat(direct.capabilities().requestAlignment()).isBetween(512, 65536);
            assertThat(buffered.capabilities().requestAlignment()).isEqualTo(1);
        }
    }

    @Test
    void seededRandomUnalignedReadsAndWritesMatchTheShadow() throws Exception {
        long seed = System.nanoTime();
        System.out.println("seededRandomUnalignedReadsAndWritesMatchTheShadow seed=" + seed);
        Random rnd = new Random(seed);
        byte[] shadow = new byte[SIZE];
        Path p = initialFile(rnd, shadow);
        try (FileNode node = FileTestSupport.open(p, true)) {
            for (int i = 0; i < 400; i++) {
                long off = unalignedOffset(rnd, SIZE - 1);
                int len = (int) Math.min(SIZE - off, 1 + rnd.nextInt(rnd.nextInt(10) == 0 ? 3 << 20 : 20000));
                ByteBuffer b = anyBuffer(rnd, len);
                if (rnd.nextBoolean()) {
                    byte[] data = new byte[len];
                    rnd.nextBytes(data);
                    b.put(0, data);
                    node.write(off, b, 0);
                    assertThat(b.hasRemaining()).isFalse();
                    System.arraycopy(data, 0, shadow, (int) off, len);
                } else {
                    node.read(off, b);
                    assertThat(b.hasRemaining()).isFalse();
                    byte[] got = new byte[len];
                    b.get(0, got);
                    assertThat(got).as("seed %d: read of %d at %d", seed, len, off)
                            .isEqualTo(Arrays.copyOfRange(shadow, (int) off, (int) off + len));
                }
            }
        }
        assertThat(Files.readAllBytes(p)).as("seed %d: file contents", seed).isEqualTo(shadow);
    }

    @Test
    void concurrentOverlappingUnalignedWritesFromVirtualThreadsLoseNothing() throws Exception {
        long seed = System.nanoTime();
        System.out.println("concurrentOverlappingUnalignedWritesFromVirtualThreadsLoseNothing seed=" + seed);
        Random rnd = new Random(seed);
        byte[] shadow = new byte[1 << 20];
        Path p = initialFile(rnd, shadow);
        // Each writer owns the bytes i, i+W, i+2W... of a small hot region: their writes are disjoint
        // bytes inside the same aligned blocks, so any lost read-modify-write shows as a wrong byte.
        int writers = 16;
        int region = 3 * 4096 + 100;
        long base = 4096 - 37;
        try (FileNode node = FileTestSupport.open(p, true);
             ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                int writer = w;
                long wseed = rnd.nextLong();
                done.add(pool.submit(() -> {
                    Random r = new Random(wseed);
                    for (int i = writer; i < region; i += writers) {
                        ByteBuffer b = anyBuffer(r, 1);
                        b.put(0, (byte) (writer + 1));
                        node.write(base + i, b, 0);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            for (int i = 0; i < region; i++) {
                shadow[(int) base + i] = (byte) (i % writers + 1);
            }
            ByteBuffer all = ByteBuffer.allocate(shadow.length);
            node.read(0, all);
            assertThat(all.array()).as("seed %d", seed).isEqualTo(shadow);
        }
        assertThat(Files.readAllBytes(p)).as("seed %d: file contents", seed).isEqualTo(shadow);
    }

    @Test
    void concurrentOverlappingWritesOfMixedAlignmentKeepEveryBlockWhole() throws Exception {
        long seed = System.nanoTime();
        System.out.println("concurrentOverlappingWritesOfMixedAlignmentKeepEveryBlockWhole seed=" + seed);
        Random rnd = new Random(seed);
        byte[] initial = new byte[64 << 10];
        Path p = initialFile(rnd, initial);
        // Aligned writes of whole blocks race with unaligned single-byte writes into the same blocks.
        // Whatever the order, every byte must be the initial byte, an aligned writer's fill, or the
        // single-byte writer's value: never a stale byte put back by an RMW over a newer aligned write.
        int block;
        try (FileNode node = FileTestSupport.open(p, true);
             ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            block = node.capabilities().requestAlignment();
            int blocks = initial.length / block;
            List<Future<?>> done = new ArrayList<>();
            for (int w = 0; w < 8; w++) {
                int writer = w;
                long wseed = rnd.nextLong();
                done.add(pool.submit(() -> {
                    Random r = new Random(wseed);
                    for (int i = 0; i < 200; i++) {
                        if (writer % 2 == 0) {
                            ByteBuffer b = anyBuffer(r, block);
                            byte[] fill = new byte[block];
                            Arrays.fill(fill, (byte) (0x80 | writer));
                            b.put(0, fill);
                            node.write((long) r.nextInt(blocks) * block, b, 0);
                        } else {
                            long off = r.nextInt(initial.length);
                            ByteBuffer b = anyBuffer(r, 1).put(0, (byte) (0x80 | writer));
                            node.write(off, b, 0);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            // Then one final unaligned write per block must be visible, each beside the block's last state.
            for (int b = 0; b < blocks; b++) {
                node.write((long) b * block + 1, ByteBuffer.wrap(new byte[] {0x7f}), 0);
            }
            ByteBuffer all = ByteBuffer.allocate(initial.length);
            node.read(0, all);
            byte[] got = all.array();
            for (int b = 0; b < blocks; b++) {
                assertThat(got[b * block + 1]).as("seed %d block %d", seed, b).isEqualTo((byte) 0x7f);
            }
        }
    }

    @Test
    void readsAndWritesAtAnUnalignedEndOfFileWork() throws Exception {
        Path p = dir.resolve("tail.img");
        byte[] data = new byte[10001];
        new Random(1).nextBytes(data);
        Files.write(p, data);
        try (FileNode node = FileTestSupport.open(p, true)) {
            ByteBuffer tail = ByteBuffer.allocate(101);
            node.read(9900, tail);
            assertThat(tail.array()).isEqualTo(Arrays.copyOfRange(data, 9900, 10001));

            ByteBuffer past = ByteBuffer.allocate(300);
            node.read(9901, past);
            assertThat(Arrays.copyOfRange(past.array(), 0, 100)).isEqualTo(Arrays.copyOfRange(data, 9901, 10001));
            assertThat(Arrays.copyOfRange(past.array(), 100, 300)).containsOnly(0);

            node.write(10001, ByteBuffer.wrap(new byte[] {1, 2, 3}), 0);
            ByteBuffer back = ByteBuffer.allocate(4);
            node.read(10000, back);
            assertThat(back.array()).containsExactly(data[10000], 1, 2, 3);
            // As under QEMU with cache.direct=on, the RMW of the last block writes it whole.
            int a = node.capabilities().requestAlignment();
            assertThat(node.length()).isEqualTo((10004 + a - 1) / a * a);
        }
    }

    @Test
    void aHugeUnalignedRequestIsBouncedInBoundedChunks() throws Exception {
        byte[] shadow = new byte[SIZE];
        Path p = initialFile(new Random(7), shadow);
        try (FileNode node = FileTestSupport.open(p, true)) {
            byte[] data = new byte[SIZE - 3000];
            new Random(8).nextBytes(data);
            node.write(1234, ByteBuffer.wrap(data), 0);
            System.arraycopy(data, 0, shadow, 1234, data.length);
            ByteBuffer back = ByteBuffer.allocate(SIZE - 1);
            node.read(1, back);
            assertThat(back.array()).isEqualTo(Arrays.copyOfRange(shadow, 1, SIZE));
        }
    }
}
