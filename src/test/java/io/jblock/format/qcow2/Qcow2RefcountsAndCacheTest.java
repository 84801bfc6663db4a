package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

/** Reference counts of every width, and the bound of the L2 cache. */
class Qcow2RefcountsAndCacheTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "refcount_bits={0}")
    @ValueSource(ints = {1, 2, 4, 8, 16, 32, 64})
    void refcountsOfEveryWidthReadAsQemuWroteThem(int bits) throws Exception {
        Path img = dir.resolve("r.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "refcount_bits=" + bits, img.toString(), "4M");
        qemuIo(img, List.of("write -P 0x11 0 64k"));
        if (bits > 1) {
            qemuImg("snapshot", "-c", "s1", img.toString()); // the data cluster is now shared: refcount 2
        }
        long l1;
        long l2;
        long data;
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            f.seek(40);
            l1 = f.readLong();
            f.seek(l1);
            l2 = f.readLong() & Qcow2L2Entry.OFFSET_MASK;
            f.seek(l2);
            data = f.readLong() & Qcow2L2Entry.OFFSET_MASK;
        }
        try (Drive d = QemuImages.open(img)) {
            Qcow2Node q = (Qcow2Node) d.root();
            assertThat(q.refcount(0)).as("header cluster").isEqualTo(1);
            assertThat(q.refcount(l1)).as("active L1 table").isEqualTo(1);
            assertThat(q.refcount(data)).as("data cluster").isEqualTo(bits > 1 ? 2 : 1);
            assertThat(q.refcount(1L << 40)).as("far past the end: no refcount block").isZero();
        }
    }

    @Test
    void theL2CacheStaysWithinItsBoundUnderAFullScan() throws Exception {
        Path img = dir.resolve("big.qcow2");
        // 512-byte clusters: 64 entries per L2 table, so 128 MiB needs 4096 tables, far more than the cache holds.
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=512,preallocation=metadata", img.toString(), "128M");
        try (Drive d = QemuImages.open(img)) {
            Qcow2Node q = (Qcow2Node) d.root();
            ByteBuffer b = ByteBuffer.allocate(1 << 20);
            for (long off = 0; off < d.length(); off += b.capacity()) {
                d.read(off, b.clear());
            }
            assertThat(q.cachedL2Slices()).isPositive().isLessThanOrEqualTo(q.l2CacheCapacity());
            assertThat(q.l2CacheCapacity()).isLessThan(4096);
        }
    }
}
