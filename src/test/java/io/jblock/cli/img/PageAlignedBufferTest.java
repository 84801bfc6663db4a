package io.jblock.cli.img;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

/** Copy buffers start on a page and hold exactly the size asked, whole pages or not (dd's bs can be any size). */
class PageAlignedBufferTest {
    @Test
    void everySizeStartsOnAPageWithItsOwnCapacity() {
        for (int bytes : new int[] {1, 511, 512, 4095, 4096, 4097, 65536 + 512, 2 << 20, (3 << 20) | 7}) {
            ByteBuffer b = ConvertJob.pageAligned(bytes);
            assertThat(b.capacity()).as("capacity for %d", bytes).isEqualTo(bytes);
            assertThat(b.remaining()).as("remaining for %d", bytes).isEqualTo(bytes);
            assertThat(MemorySegment.ofBuffer(b).address() % 4096).as("page offset for %d", bytes).isZero();
        }
    }
}
