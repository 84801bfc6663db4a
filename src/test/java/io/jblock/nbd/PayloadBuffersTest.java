package io.jblock.nbd;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PayloadBuffersTest {
    @Test
    void buffersAreDirectAlignedAndSizedToThePowerOfTwoClass() {
        PayloadBuffers p = new PayloadBuffers();
        for (int length : new int[] {0, 1, 4096, 4097, 65536, 100_000, Nbd.MAX_PAYLOAD}) {
            ByteBuffer b = p.acquire(length);
            assertThat(b.isDirect()).isTrue();
            assertThat(b.position()).isZero();
            assertThat(b.limit()).isEqualTo(length);
            assertThat(b.capacity()).isEqualTo(Math.max(4096, Integer.highestOneBit(Math.max(1, length - 1)) << 1))
                    .as("length %d", length);
            assertThat(MemorySegment.ofBuffer(b).address() % PayloadBuffers.ALIGNMENT).isZero();
            p.release(b);
        }
        assertThatThrownBy(() -> p.acquire(Nbd.MAX_PAYLOAD + 1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aReleasedBufferIsReusedClearedToTheNewLength() {
        PayloadBuffers p = new PayloadBuffers();
        ByteBuffer a = p.acquire(4096);
        a.position(100);
        p.release(a);
        ByteBuffer b = p.acquire(3000);
        assertThat(b).isSameAs(a);
        assertThat(b.position()).isZero();
        assertThat(b.limit()).isEqualTo(3000);
    }

    @Test
    void eachClassKeepsOnlyItsSlotsAndTheTotalIsBounded() {
        PayloadBuffers p = new PayloadBuffers();
        int shift = 16; // 64 KiB: 2 MiB worth of slots
        int slots = PayloadBuffers.slots(shift);
        assertThat(slots).isEqualTo(32);
        List<ByteBuffer> out = new ArrayList<>();
        for (int i = 0; i < slots + 10; i++) {
            out.add(p.acquire(1 << shift));
        }
        out.forEach(p::release);
        Set<ByteBuffer> kept = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < slots + 10; i++) {
            kept.add(p.acquire(1 << shift));
        }
        Set<ByteBuffer> given = Collections.newSetFromMap(new IdentityHashMap<>());
        given.addAll(out);
        kept.retainAll(given);
        assertThat(kept).as("buffers reused of %d given back", slots + 10).hasSize(slots);
        assertThat(PayloadBuffers.slots(12)).isEqualTo(64);
        assertThat(PayloadBuffers.slots(25)).isEqualTo(1);
        assertThat(PayloadBuffers.RETAINED_BYTES).isEqualTo(
                (256L << 10) + (512L << 10) + (1L << 20) + 7 * (2L << 20) + (4L + 8 + 16 + 32) * (1L << 20));
    }
}
