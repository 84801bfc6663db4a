package io.jblock.engine;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

class IdleBuffersTest {
    @Test
    void capacityIsRoundedUpToAPowerOfTwo() {
        assertThat(new IdleBuffers(0).capacity()).isZero();
        assertThat(new IdleBuffers(1).capacity()).isEqualTo(1);
        assertThat(new IdleBuffers(3).capacity()).isEqualTo(4);
        assertThat(new IdleBuffers(4).capacity()).isEqualTo(4);
        assertThat(new IdleBuffers(5).capacity()).isEqualTo(8);
    }

    @Test
    void keepsAtMostItsCapacityAndHandsEachBufferBackOnce() {
        IdleBuffers idle = new IdleBuffers(4);
        List<ByteBuffer> given = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            ByteBuffer b = ByteBuffer.allocate(16);
            assertThat(idle.offer(b)).as("offer %d", i).isEqualTo(i < 4);
            given.add(b);
        }
        Set<ByteBuffer> back = Collections.newSetFromMap(new IdentityHashMap<>());
        ByteBuffer b;
        while ((b = idle.poll()) != null) {
            assertThat(back.add(b)).as("handed out twice").isTrue();
        }
        assertThat(back).hasSize(4).allMatch(x -> given.subList(0, 4).stream().anyMatch(g -> g == x));
        assertThat(new IdleBuffers(0).offer(ByteBuffer.allocate(1))).isFalse();
    }

    @Test
    void underContentionNoBufferIsEverHeldByTwoThreadsAndNoneIsLost() throws Exception {
        IdleBuffers idle = new IdleBuffers(4);
        for (int i = 0; i < 4; i++) {
            idle.offer(ByteBuffer.allocate(8).putInt(0, i)); // each buffer carries its own id
        }
        Set<Integer> held = ConcurrentHashMap.newKeySet();
        AtomicReference<String> problem = new AtomicReference<>();
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 6; t++) {
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < 200_000; i++) {
                    ByteBuffer b = idle.poll();
                    if (b == null) {
                        continue;
                    }
                    if (!held.add(b.getInt(0))) {
                        problem.set("a buffer was handed to two threads at once");
                    }
                    held.remove(b.getInt(0));
                    if (!idle.offer(b)) {
                        problem.set("a buffer given back found no free slot: one was lost or duplicated");
                    }
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) {
            t.join();
        }
        assertThat(problem.get()).isNull();
        int left = 0;
        while (idle.poll() != null) {
            left++;
        }
        assertThat(left).isEqualTo(4);
    }
}
