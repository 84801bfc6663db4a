package io.jblock.cli.img;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** Zero detection decides per 512-byte sector, whichever byte of it holds data. */
class ZeroScanTest {
    @Test
    void aSectorIsDataWhereverItsOneNonZeroByteIs() {
        for (boolean direct : new boolean[]{false, true}) {
            for (int at : new int[]{0, 7, 8, 100, 255, 503, 504, 511}) {
                ByteBuffer b = direct ? ByteBuffer.allocateDirect(4 * 512) : ByteBuffer.allocate(4 * 512);
                b.put(512 + at, (byte) 1);
                ZeroScan.Run first = ZeroScan.allocated(b, 0, 4, 0, 1);
                assertThat(first.sectors()).as("byte %d, direct %s", at, direct).isEqualTo(1);
                assertThat(first.allocated()).isFalse();
                ZeroScan.Run second = ZeroScan.allocated(b, 1, 3, 1, 1);
                assertThat(second.sectors()).as("byte %d, direct %s", at, direct).isEqualTo(1);
                assertThat(second.allocated()).isTrue();
                assertThat(ZeroScan.isZero(b.slice(512, 512))).isFalse();
                assertThat(ZeroScan.isZero(b.slice(1024, 1024))).isTrue();
            }
        }
    }

    @Test
    void randomSectorsAgreeWithAByteByByteScan() {
        long seed = new Random().nextLong();
        System.out.println("ZeroScan random sectors: seed " + seed);
        Random r = new Random(seed);
        ByteBuffer b = ByteBuffer.allocateDirect(64 * 512);
        for (int s = 0; s < 64; s++) {
            if (r.nextBoolean()) {
                b.put(s * 512 + r.nextInt(512), (byte) (1 + r.nextInt(255)));
            }
        }
        int s = 0;
        while (s < 64) {
            ZeroScan.Run run = ZeroScan.allocated(b, s, 64 - s, s, 1);
            for (int k = s; k < s + run.sectors(); k++) {
                boolean zero = true;
                for (int i = 0; i < 512; i++) {
                    zero &= b.get(k * 512 + i) == 0;
                }
                assertThat(zero).as("sector %d (seed %d)", k, seed).isEqualTo(!run.allocated());
            }
            s += run.sectors();
        }
    }
}
