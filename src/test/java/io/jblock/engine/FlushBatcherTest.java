package io.jblock.engine;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class FlushBatcherTest {
    @Test
    void anAnnouncedCallerNestedInItsOwnRunCountsAsArrived() throws Exception {
        FlushBatcher b = new FlushBatcher(TimeUnit.MILLISECONDS.toNanos(1));
        int[] inner = {0};
        b.expect();
        b.sync(() -> b.sync(() -> inner[0]++, true), false);
        assertThat(inner[0]).isEqualTo(1);
        // Left counted, every later run would wait for a caller that never comes.
        assertThat(b.announcedForTests()).isZero();
    }

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

    /** A run that is about to start waits for the caller announced before it, and covers it: one run, not two. */
    @Test
    void aRunWaitsForAnAnnouncedCallerAndCoversIt() throws Exception {
        FlushBatcher b = new FlushBatcher(TimeUnit.MINUTES.toNanos(1));
        AtomicInteger ran = new AtomicInteger();
        CountDownLatch announced = new CountDownLatch(1);
        CountDownLatch writeDone = new CountDownLatch(1);
        Thread writer = Thread.ofVirtual().start(() -> {
            b.expect();            // a writethrough write starts
            announced.countDown();
            try {
                writeDone.await(); // ... and takes its time
                b.sync(ran::incrementAndGet, true);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        announced.await();
        Thread flusher = Thread.ofVirtual().start(() -> b.sync(ran::incrementAndGet));
        // The flusher's run cannot start before the announced writer arrives (its limit is a minute).
        flusher.join(Duration.ofMillis(200));
        assertThat(flusher.isAlive()).as("run waiting for the announced caller").isTrue();
        assertThat(ran.get()).isZero();
        writeDone.countDown();
        writer.join();
        flusher.join();
        assertThat(ran.get()).as("one run covered both").isEqualTo(1);
        assertThat(b.runs()).isEqualTo(1);
    }

    /**
     * A caller announced while a run waits for the ones announced before it
     * (a writer released by the previous run, starting its write a little
     * later than the others) is waited for too: one run covers all three, not
     * one run for the first two and another for it.
     */
    @Test
    void aRunAlsoWaitsForACallerAnnouncedWhileItWaits() throws Exception {
        FlushBatcher b = new FlushBatcher(TimeUnit.MINUTES.toNanos(1));
        AtomicInteger ran = new AtomicInteger();
        b.expect(); // first writer's write in flight
        Thread flusher = Thread.ofVirtual().start(() -> b.sync(ran::incrementAndGet));
        while (!b.gatheringForTests()) {
            Thread.onSpinWait();
        }
        b.expect(); // second writer starts its write while the run waits
        Thread first = Thread.ofVirtual().start(() -> b.sync(ran::incrementAndGet, true));
        while (b.announcedForTests() != 1) {
            Thread.onSpinWait();
        }
        // The first writer has arrived; the run still waits for the second (its limit is a minute).
        flusher.join(Duration.ofMillis(200));
        assertThat(flusher.isAlive()).as("run waiting for the writer announced while it waited").isTrue();
        assertThat(ran.get()).isZero();
        Thread second = Thread.ofVirtual().start(() -> b.sync(ran::incrementAndGet, true));
        for (Thread t : List.of(flusher, first, second)) {
            t.join();
        }
        assertThat(ran.get()).as("one run covered all three").isEqualTo(1);
        assertThat(b.runs()).isEqualTo(1);
    }

    /** An announced caller that withdraws (its write failed) does not hold a run up. */
    @Test
    void aWithdrawnCallerReleasesTheRunWaitingForIt() throws Exception {
        FlushBatcher b = new FlushBatcher(TimeUnit.MINUTES.toNanos(1));
        b.expect();
        AtomicInteger ran = new AtomicInteger();
        Thread flusher = Thread.ofVirtual().start(() -> b.sync(ran::incrementAndGet));
        flusher.join(Duration.ofMillis(100));
        assertThat(ran.get()).isZero();
        b.withdraw();
        flusher.join(Duration.ofMinutes(1));
        assertThat(flusher.isAlive()).isFalse();
        assertThat(ran.get()).isEqualTo(1);
    }

    /**
     * Two callers arrive while run A goes on; the next run covers both and
     * fails: both get its error, though A succeeded and a later run succeeds.
     */
    @Test
    void everyCallerAFailedRunCoveredFailsWithItsError() throws Exception {
        FlushBatcher b = new FlushBatcher();
        CountDownLatch inA = new CountDownLatch(1);
        CountDownLatch endA = new CountDownLatch(1);
        IOException boom = new IOException("Input/output error");
        AtomicInteger runs = new AtomicInteger();
        Thread a = Thread.ofVirtual().start(() -> {
            try {
                b.sync(() -> {
                    runs.incrementAndGet();
                    inA.countDown();
                    try {
                        endA.await();
                    } catch (InterruptedException e) {
                        throw new IOException(e);
                    }
                });
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        inA.await();
        ConcurrentLinkedQueue<Throwable> outcomes = new ConcurrentLinkedQueue<>();
        List<Thread> late = new ArrayList<>();
        CountDownLatch arrived = new CountDownLatch(2);
        for (int i = 0; i < 2; i++) {
            late.add(Thread.ofVirtual().start(() -> {
                try {
                    arrived.countDown();
                    b.sync(() -> {
                        runs.incrementAndGet();
                        throw boom;
                    });
                    outcomes.add(new AssertionError("returned normally"));
                } catch (IOException e) {
                    outcomes.add(e);
                }
            }));
        }
        arrived.await();
        // Both have arrived (or are about to, before A ends: they wait for A either way).
        while (b.arrivalsForTests() < 3) {
            Thread.onSpinWait();
        }
        endA.countDown();
        a.join();
        for (Thread t : late) {
            t.join();
        }
        assertThat(outcomes).hasSize(2).allMatch(t -> t == boom);
        assertThat(runs.get()).as("A, then one run for both").isEqualTo(2);
        AtomicInteger later = new AtomicInteger();
        b.sync(later::incrementAndGet);
        assertThat(later.get()).as("a caller after the failure gets a run of its own").isEqualTo(1);
    }
}
