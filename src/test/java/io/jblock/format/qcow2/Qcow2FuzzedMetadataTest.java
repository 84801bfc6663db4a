package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockStatus;
import io.jblock.block.Drive;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Random;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Seeded random damage to the metadata of real images (header, extensions,
 * L1, refcount and L2 tables, compressed descriptors): whatever the bytes
 * say, opening, reading every byte and walking the block status either
 * works or fails with a {@link BlockException}; nothing else escapes, and
 * the timeout catches a hang.
 */
@Timeout(300)
class Qcow2FuzzedMetadataTest {
    private static final long SIZE = 4L << 20;

    @TempDir
    Path dir;

    @Test
    void damagedMetadataFailsOnlyWithBlockExceptions() throws Exception {
        Path plain = dir.resolve("plain.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", plain.toString(), Long.toString(SIZE));
        qemuIo(plain, QemuImages.randomWrites(1, SIZE, 512, 200_000, 30, true));
        Path extended = dir.resolve("ext.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=16k", extended.toString(),
                Long.toString(SIZE));
        qemuIo(extended, QemuImages.randomWrites(2, SIZE, 512, 100_000, 30, true));
        Path compressed = dir.resolve("comp.qcow2");
        qemuImg("convert", "-c", "-O", "qcow2", "-o", "cluster_size=4k", plain.toString(), compressed.toString());

        long seed = new Random().nextLong();
        System.out.println("qcow2 metadata fuzz: seed " + seed);
        Random r = new Random(seed);
        int opened = 0;
        int refused = 0;
        for (int round = 0; round < 150; round++) {
            Path source = List.of(plain, extended, compressed).get(round % 3);
            Path victim = dir.resolve("victim.qcow2");
            Files.copy(source, victim, StandardCopyOption.REPLACE_EXISTING);
            byte[] bytes = Files.readAllBytes(victim);
            int metadataEnd = (int) Math.min(bytes.length, 8 * 16384);
            int flips = 1 + r.nextInt(8);
            for (int f = 0; f < flips; f++) {
                int at = r.nextInt(metadataEnd);
                bytes[at] = r.nextBoolean() ? (byte) r.nextInt(256) : (byte) (bytes[at] ^ (1 << r.nextInt(8)));
            }
            Files.write(victim, bytes);
            try {
                exercise(victim);
                opened++;
            } catch (BlockException expected) {
                refused++;
            } catch (Throwable unexpected) {
                throw new AssertionError("round " + round + " of seed " + seed + " (" + source.getFileName()
                        + "): not a BlockException", unexpected);
            }
        }
        assertThat(opened + refused).isEqualTo(150);
        assertThat(refused).as("damage that jblock noticed (seed %d)", seed).isPositive();
    }

    private static void exercise(Path image) throws BlockException {
        try (Drive d = QemuImages.open(image)) {
            long size = Math.min(d.length(), 64L << 20); // a damaged size may be huge; the first 64 MiB will do
            ByteBuffer b = ByteBuffer.allocate(256 << 10);
            for (long off = 0; off < size; off += b.capacity()) {
                d.read(off, b.clear().limit((int) Math.min(b.capacity(), size - off)));
            }
            for (long off = 0; off < size; ) {
                BlockStatus s = d.blockStatus(off, size - off);
                off += s.length();
            }
        }
    }
}
