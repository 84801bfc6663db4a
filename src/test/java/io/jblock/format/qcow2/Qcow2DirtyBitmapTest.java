package io.jblock.format.qcow2;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The in-memory bitmap: granule marking, the spec's bit order on disk, merges across granularities. */
class Qcow2DirtyBitmapTest {
    private static Qcow2DirtyBitmap bitmap(int granularityBits, long size) {
        return new Qcow2DirtyBitmap("b", granularityBits, size, true, false, true);
    }

    @Test
    void aRangeMarksEveryGranuleItTouchesAndNoOther() {
        Qcow2DirtyBitmap b = bitmap(16, 10L << 20);
        b.setRange(65535, 2);
        assertThat(b.get(0)).isTrue();
        assertThat(b.get(1)).isTrue();
        assertThat(b.get(2)).isFalse();
        assertThat(b.count()).isEqualTo(2);
        b.setRange((10L << 20) - 1, 1);
        assertThat(b.get(159)).isTrue();
        b.setRange(0, 0);
        assertThat(b.count()).isEqualTo(3);
    }

    @Test
    void longRangesCrossWordsExactly() {
        long seed = new Random().nextLong();
        Random r = new Random(seed);
        long size = 7_777_777;
        Qcow2DirtyBitmap b = bitmap(9, size);
        BitSet shadow = new BitSet();
        for (int i = 0; i < 300; i++) {
            long len = 1 + r.nextInt(200_000);
            long off = r.nextLong(size - len + 1);
            b.setRange(off, len);
            shadow.set((int) (off >> 9), (int) ((off + len - 1) >> 9) + 1);
        }
        for (long bit = 0; bit < b.bits(); bit++) {
            assertThat(b.get(bit)).as("granule %d (seed %d)", bit, seed).isEqualTo(shadow.get((int) bit));
        }
        assertThat(b.count()).isEqualTo(shadow.cardinality());
    }

    @Test
    void clustersAreStoredWithGranuleIAsBitIMod8OfByteIDiv8() {
        Qcow2DirtyBitmap b = bitmap(16, 10L << 20);
        b.setRange(65536, 1); // granule 1
        b.setRange(1 << 20, 1); // granule 16
        ByteBuffer cluster = ByteBuffer.allocate(512);
        b.serializeCluster(0, cluster);
        assertThat(cluster.get(0)).isEqualTo((byte) 0x02);
        assertThat(cluster.get(1)).isEqualTo((byte) 0);
        assertThat(cluster.get(2)).isEqualTo((byte) 0x01);
        Qcow2DirtyBitmap back = bitmap(16, 10L << 20);
        back.deserializeCluster(0, cluster);
        assertThat(back.count()).isEqualTo(2);
        assertThat(back.get(1) && back.get(16)).isTrue();
    }

    @Test
    void allOnesAndStoredGarbageStopAtTheLastGranule() {
        Qcow2DirtyBitmap b = bitmap(9, 1000 * 512 + 100); // 1001 granules
        b.fillCluster(0, 65536);
        assertThat(b.count()).isEqualTo(1001);
        ByteBuffer ones = ByteBuffer.allocate(65536);
        java.util.Arrays.fill(ones.array(), (byte) 0xff);
        Qcow2DirtyBitmap c = bitmap(9, 1000 * 512 + 100);
        c.deserializeCluster(0, ones);
        assertThat(c.count()).isEqualTo(1001);
    }

    @Test
    void mergeCarriesByteRangesAcrossGranularities() {
        Qcow2DirtyBitmap fine = bitmap(12, 1 << 20);
        fine.setRange(8192, 1);
        Qcow2DirtyBitmap coarse = bitmap(16, 1 << 20);
        coarse.merge(fine);
        assertThat(coarse.count()).isEqualTo(1);
        assertThat(coarse.get(0)).isTrue();
        Qcow2DirtyBitmap back = bitmap(12, 1 << 20);
        back.merge(coarse);
        assertThat(back.count()).as("one 64k granule is sixteen 4k ones").isEqualTo(16);
    }

    @Test
    void resizeDropsGranulesPastTheEndAndAddsCleanOnes() {
        Qcow2DirtyBitmap b = bitmap(16, 10L << 20);
        b.setRange(0, 10L << 20);
        b.resize(5L << 20);
        assertThat(b.count()).isEqualTo(80);
        b.resize(20L << 20);
        assertThat(b.count()).isEqualTo(80);
        assertThat(b.bits()).isEqualTo(320);
    }
}
