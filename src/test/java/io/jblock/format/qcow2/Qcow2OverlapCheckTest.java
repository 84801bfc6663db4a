package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The overlap check's refcount-block part (QEMU's qcow2_pre_write_overlap_check
 * for QCOW2_OL_REFCOUNT_BLOCK): kept in a sorted index of block offsets, it
 * must answer exactly as a pass over the whole refcount table, also after
 * the image made new blocks and grew the table.
 */
class Qcow2OverlapCheckTest {
    private static final long TABLE_OFFSET_MASK = 0xfffffffffffffe00L;

    @TempDir
    Path dir;

    @Test
    void anAllocationOverlappingARefcountBlockMarksTheImageCorruptAndFails() throws Exception {
        Path img = dir.resolve("overlap.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "4M");
        qemuIo(img, List.of("write -P 1 0 64k"));
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(72);
            ch.read(h, 0);
            ByteBuffer t = ByteBuffer.allocate(8);
            ch.read(t, h.getLong(48));
            long refblock = t.getLong(0);
            // The refcount block's own cluster claims to be free: the next allocation would land on it.
            ch.write(ByteBuffer.allocate(2), refblock + (refblock / 65536) * 2);
        }
        try (Drive d = rw(img)) {
            assertThatThrownBy(() -> d.write(1 << 20, ByteBuffer.wrap(new byte[512]), WriteFlags.NONE))
                    .isInstanceOf(BlockException.Corrupt.class)
                    .hasMessageContaining("overlaps with refcount block");
        }
    }

    @Test
    void theBlockIndexAnswersAsAPassOverTheTableAfterNewBlocksAndATableGrowth() throws Exception {
        long seed = Long.getLong("jblock.test.seed", System.nanoTime());
        System.out.println("Qcow2OverlapCheckTest seed " + seed + " (-Djblock.test.seed=" + seed + ")");
        Random r = new Random(seed);
        Path img = dir.resolve("small.qcow2");
        // 512-byte clusters, 16-bit refcounts: one block counts 256 clusters (128 KiB), and the one-cluster
        // refcount table reaches 64 blocks (8 MiB of file): writing 12 MiB makes many blocks and grows it.
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", img.toString(), "64M");
        try (Drive d = rw(img)) {
            Qcow2Node q = (Qcow2Node) d.root();
            int tableBefore = q.refcountTable().length;
            checkAgainstTable(q, Files.size(img), r); // the index built from the table as read
            byte[] chunk = new byte[64 << 10];
            for (int i = 0; i < 192; i++) {
                r.nextBytes(chunk);
                d.write(((long) r.nextInt(1024)) * chunk.length, ByteBuffer.wrap(chunk), WriteFlags.NONE);
                if (i % 48 == 47) {
                    checkAgainstTable(q, Files.size(img), r); // blocks added one by one since
                }
            }
            assertThat(q.refcountTable().length).as("the refcount table grew").isGreaterThan(tableBefore);
        }
        assertThat(qemuImg("check", img.toString()).out()).contains("No errors were found on the image.");
    }

    /** Every cluster of the file, and ranges around each block's edges, answer as the brute-force pass does. */
    private static void checkAgainstTable(Qcow2Node q, long fileLength, Random r) throws BlockException {
        long[] table = q.refcountTable();
        long cs = 512;
        int blocks = 0;
        for (long at = 0; at < fileLength + 4 * cs; at += cs) {
            assertThat(q.overlapsRefcountBlock(at, cs)).as("cluster at %d", at).isEqualTo(bruteForce(table, at, cs, cs));
        }
        for (long e : table) {
            long b = e & TABLE_OFFSET_MASK;
            if (b == 0) {
                continue;
            }
            blocks++;
            for (long[] range : new long[][] {{b - cs, cs}, {b - 1, 1}, {b - 1, 2}, {b + cs - 1, 1}, {b + cs, cs},
                    {b - 3 * cs, 3 * cs}, {b - 3 * cs, 3 * cs + 1}, {b + 1, 1 + r.nextInt(4096)}}) {
                assertThat(q.overlapsRefcountBlock(range[0], range[1]))
                        .as("range %d+%d near the block at %d", range[0], range[1], b)
                        .isEqualTo(bruteForce(table, range[0], range[1], cs));
            }
        }
        assertThat(blocks).isPositive();
    }

    private static boolean bruteForce(long[] table, long offset, long length, long cs) {
        for (long e : table) {
            long b = e & TABLE_OFFSET_MASK;
            if (b != 0 && b < offset + length && offset < b + cs) {
                return true;
            }
        }
        return false;
    }

    private static Drive rw(Path img) throws BlockException {
        return DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"));
    }
}
