package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import io.jblock.testing.CountingEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The qcow2 write ordering must hold after a failed fdatasync too. A failed
 * fdatasync may have dropped the dirty pages it covered (fsyncgate), so a
 * metadata write that had to wait for a flush still waits for one that
 * succeeds, and since every later flush of the file fails, it is never
 * written: a leak at worst, as QEMU's caches keep their dependency until a
 * flush succeeds. Before, the first failed attempt counted as the flush: the
 * next flush of the image wrote a dropped refcount before the L2 entry that
 * no longer used the cluster was known to be on the disk (or an L2 entry
 * before the refcount that counts its new cluster), which after a power cut
 * leaves a cluster in use with a count of 0.
 */
class Qcow2FailedFlushOrderTest {
    private static final long CS = 65536;

    @TempDir
    Path dir;

    private Drive open(Path img, CountingEngine engine) throws BlockException {
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), CountingEngine.provider(engine)));
        return opener.open(DriveConfig.parseDrive("file=" + img + ",format=qcow2,cache=writeback,aio=threads,discard=unmap"));
    }

    @Test
    void aDroppedCountIsNotWrittenAfterTheFlushBeforeItFailed() throws Exception {
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "4M");
        CountingEngine engine = new CountingEngine();
        Drive d = open(img, engine);
        try {
            d.write(0, ByteBuffer.wrap(new byte[(int) CS]).put(0, (byte) 1), WriteFlags.NONE);
            d.flush();
            long host = l2Entry(img, 0) & 0x00fffffffffffe00L;
            assertThat(host).isNotZero();
            assertThat(refcount(img, host)).isEqualTo(1);

            engine.faults.failingDatasyncs.set(1);
            d.discard(0, CS); // the L2 entry is written, the count drops in the cache
            assertThatThrownBy(d::flush).isInstanceOf(BlockException.class);
            assertThatThrownBy(d::flush).isInstanceOf(BlockException.class);
            assertThat(refcount(img, host)).as("the dropped count in the file after two failed flushes").isEqualTo(1);
        } finally {
            closeQuietly(d);
        }
        assertThat(refcount(img, l2Entry(img, 0) & 0x00fffffffffffe00L)).isIn(0L, 1L);
    }

    @Test
    void anL2EntryIsNotWrittenAfterTheFlushOfItsNewCountFailed() throws Exception {
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "4M");
        CountingEngine engine = new CountingEngine();
        Drive d = open(img, engine);
        try {
            d.write(0, ByteBuffer.wrap(new byte[(int) CS]).put(0, (byte) 1), WriteFlags.NONE);
            d.flush();
            engine.faults.failingDatasyncs.set(1);
            d.write(CS, ByteBuffer.wrap(new byte[(int) CS]).put(0, (byte) 2), WriteFlags.NONE);
            assertThatThrownBy(d::flush).isInstanceOf(BlockException.class);
            assertThatThrownBy(d::flush).isInstanceOf(BlockException.class);
            assertThat(l2Entry(img, 1)).as("the new cluster's L2 entry in the file after two failed flushes")
                    .isZero();
        } finally {
            closeQuietly(d);
        }
        assertThat(l2Entry(img, 1)).isZero();
    }

    private static void closeQuietly(Drive d) {
        try {
            d.close();
        } catch (BlockException expected) {
            // every flush fails after the first failure
        }
    }

    /** The L2 entry of guest cluster {@code index} (first L2 table) as the file holds it. */
    private static long l2Entry(Path img, int index) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            f.seek(40);
            long l1 = f.readLong();
            f.seek(l1);
            long l2 = f.readLong() & 0x00fffffffffffe00L;
            if (l2 == 0) {
                return 0;
            }
            f.seek(l2 + 8L * index);
            return f.readLong();
        }
    }

    /** The 16-bit refcount of the host cluster at {@code host} as the file holds it. */
    private static long refcount(Path img, long host) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            f.seek(48);
            long table = f.readLong();
            long cluster = host / CS;
            long perBlock = CS / 2;
            f.seek(table + 8 * (cluster / perBlock));
            long block = f.readLong() & 0xfffffffffffffe00L;
            f.seek(block + 2 * (cluster % perBlock));
            return f.readUnsignedShort();
        }
    }
}
