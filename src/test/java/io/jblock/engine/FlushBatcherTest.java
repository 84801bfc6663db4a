package io.jblock.engine;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class FlushBatcherTest {
    /** Every caller returns only after a sync that began after it arrived has ended; fewer syncs than callers. */
    @Test
    void concurrentCallersShareSyncsThatStartedAfterThem() throws Exception {
        FlushBatcher b = new FlushBatcher();
        AtomicLong clock = new AtomicLong();
        AtomicInteger syncs = new AtomicInteger();
        // Each sync: [start tick, end tick]
        ConcurrentLinkedQueue<long[]> done = new ConcurrentLinkedQueue<>();
        ConcurrentLinkedQueue<String> violations = new ConcurrentLinkedQueue<>();
        int callers = 64;
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < callers; i++) {
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    go.await();
                    for (int k = 0; k < 20; k++) {
                        long arrived = clock.incrementAndGet();
                        b.sync(() -> {
                            long start = clock.incrementAndGet();
                            syncs.incrementAndGet();
                            try {
                                Thread.sleep(1);
                            } catch (InterruptedException e) {
                                throw new IOException(e);
                            }
                            done.add(new long[] {start, clock.incrementAndGet()});
                        });
                        long returned = clock.incrementAndGet();
                        boolean covered = done.stream().anyMatch(s -> s[0] > arrived && s[1] < returned);
                        if (!covered) {
                            violations.add("caller arrived at " + arrived + " returned at " + returned);
                        }
                    }
                } catch (IOException | InterruptedException e) {
                    violations.add(e.toString());
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) {
            t.join();
        }
        assertThat(violations).isEmpty();
        assertThat(syncs.get()).isLessThan(callers * 20).isPositive();
    }

    /** A failed sync fails the callers it covered with its error; a later caller gets a sync of its own. */
    @Test
    void aFailedSyncFailsTheCallersItCoveredAndTheNextCallerSyncsAgain() throws Exception {
        FlushBatcher b = new FlushBatcher();
        IOException boom = new IOException("EIO");
        assertThatThrownBy(() -> b.sync(() -> {
            throw boom;
        })).isSameAs(boom);
        AtomicInteger ran = new AtomicInteger();
        b.sync(ran::incrementAndGet);
        assertThat(ran.get()).isEqualTo(1);
    }
}
