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

    /** How many of {@code count} buffers of {@code length} given back at once come back. */
    private static int reused(PayloadBuffers p, int length, int count) {
        List<ByteBuffer> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(p.acquire(length));
        }
        out.forEach(p::release);
        Set<ByteBuffer> given = Collections.newSetFromMap(new IdentityHashMap<>());
        given.addAll(out);
        int n = 0;
        for (int i = 0; i < count; i++) {
            if (given.contains(p.acquire(length))) {
                n++;
            }
        }
        return n;
    }

    @Test
    void smallClassesKeep64Each() {
        assertThat(reused(new PayloadBuffers(), 64 << 10, 70)).isEqualTo(64);
        assertThat(reused(new PayloadBuffers(), 4096, 70)).isEqualTo(64);
    }

    @Test
    void largeClassesKeepAConnectionsDepthEachWithinOneSharedByteCount() {
        assertThat(reused(new PayloadBuffers(), 1 << 20, 20)).as("1 MiB").isEqualTo(Nbd.MAX_IN_FLIGHT);
        assertThat(reused(new PayloadBuffers(), 8 << 20, 10)).as("8 MiB: 48 MiB of them").isEqualTo(6);
        PayloadBuffers p = new PayloadBuffers();
        assertThat(reused(p, 16 << 20, 3)).isEqualTo(3);
        assertThat(reused(p, 4 << 20, 8)).as("after 48 MiB of 16 MiB buffers were kept and taken again")
                .isEqualTo(8);
        assertThat(PayloadBuffers.RETAINED_BYTES).isEqualTo(64L * ((256L << 10) - 4096) + (48L << 20));
    }
}
