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
    void anUnalignedWriteNeverPutsBackBytesOlderThanAConcurrentAlignedWrite() throws Exception {
        long seed = System.nanoTime();
        System.out.println("anUnalignedWriteNeverPutsBackBytesOlderThanAConcurrentAlignedWrite seed=" + seed);
        Random rnd = new Random(seed);
        byte[] initial = new byte[64 << 10];
        Path p = initialFile(rnd, initial);
        // One aligned writer per block fills it with 1, 2, ... LAST in turn, while unaligned writers
        // put single bytes (0x80 | writer) anywhere in those blocks. At the end every byte must be LAST
        // or a single byte written after it; an RMW that read a block before an aligned write and wrote
        // it back after would leave an older fill behind.
        final int last = 100;
        int blocks = 4;
        try (FileNode node = FileTestSupport.open(p, true);
             ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            int block = node.capabilities().requestAlignment();
            List<Future<?>> done = new ArrayList<>();
            for (int b = 0; b < blocks; b++) {
                long at = (long) b * block;
                long wseed = rnd.nextLong();
                done.add(pool.submit(() -> {
                    Random r = new Random(wseed);
                    for (int v = 1; v <= last; v++) {
                        ByteBuffer buf = anyBuffer(r, block);
                        byte[] fill = new byte[block];
                        Arrays.fill(fill, (byte) v);
                        node.write(at, buf.put(0, fill), 0);
                    }
                    return null;
                }));
            }
            for (int w = 0; w < 8; w++) {
                byte value = (byte) (0x80 | w);
                long wseed = rnd.nextLong();
                done.add(pool.submit(() -> {
                    Random r = new Random(wseed);
                    for (int i = 0; i < 300; i++) {
                        node.write(r.nextInt(blocks * block), anyBuffer(r, 1).put(0, value), 0);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            ByteBuffer all = ByteBuffer.allocate(blocks * block);
            node.read(0, all);
            for (int i = 0; i < all.capacity(); i++) {
                byte v = all.get(i);
                assertThat(v == last || (v & 0x80) != 0).as("seed %d: byte %d is %d", seed, i, v).isTrue();
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
            // The RMW of the last block writes it whole, and the file is cut back to where the write ended,
            // as QEMU's file ends (seen as whole sectors).
            assertThat(Files.size(p)).isEqualTo(10004);
            assertThat(node.length()).isEqualTo(10240);
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

    @Test
    void onlyTheBytesBetweenPositionAndLimitAreTransferredAndThePositionMovesToTheLimit() throws Exception {
        Path p = dir.resolve("pos.img");
        byte[] data = new byte[16384];
        new Random(3).nextBytes(data);
        Files.write(p, data);
        try (FileNode node = FileTestSupport.open(p, true)) {
            for (ByteBuffer b : new ByteBuffer[] {ByteBuffer.allocate(64), ByteBuffer.allocateDirect(64)}) {
                b.position(10).limit(20);
                node.read(4090, b);
                assertThat(b.position()).isEqualTo(20);
                b.limit(64);
                for (int i = 0; i < 64; i++) {
                    byte expected = i >= 10 && i < 20 ? data[4090 + i - 10] : 0;
                    assertThat(b.get(i)).as("byte %d", i).isEqualTo(expected);
                }
                b.clear().put(0, new byte[64]).position(30).limit(33);
                b.put(30, new byte[] {1, 2, 3});
                node.write(8191, b, 0);
                assertThat(b.position()).isEqualTo(33);
                ByteBuffer back = ByteBuffer.allocate(5);
                node.read(8190, back);
                assertThat(back.array()).containsExactly(data[8190], 1, 2, 3, data[8194]);
            }
        }
    }
}
