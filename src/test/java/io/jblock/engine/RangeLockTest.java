package io.jblock.engine;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

class RangeLockTest {
    private final RangeLock locks = new RangeLock();

    /** Starts a virtual thread that takes a lock and records when it got it. */
    private Thread taker(boolean exclusive, long start, long end, AtomicBoolean got, CountDownLatch done) {
        return Thread.ofVirtual().start(() -> {
            try (RangeLock.Held ignored = exclusive ? locks.lockExclusive(start, end)
                    : locks.lockShared(start, end)) {
                got.set(true);
            }
            done.countDown();
        });
    }

    @Test
    void sharedHoldersOfOverlappingRangesDoNotWaitForEachOther() throws Exception {
        try (RangeLock.Held ignored = locks.lockShared(0, 4096)) {
            AtomicBoolean got = new AtomicBoolean();
            CountDownLatch done = new CountDownLatch(1);
            taker(false, 0, 8192, got, done);
            assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
            assertThat(got).isTrue();
        }
    }

    @Test
    void anExclusiveHolderMakesOverlappingRequestsWaitButNotDisjointOnes() throws Exception {
        AtomicBoolean overlapping = new AtomicBoolean();
        AtomicBoolean disjoint = new AtomicBoolean();
        CountDownLatch overlappingDone = new CountDownLatch(1);
        CountDownLatch disjointDone = new CountDownLatch(1);
        Thread waiter;
        try (RangeLock.Held ignored = locks.lockExclusive(4096, 8192)) {
            waiter = taker(false, 0, 4097, overlapping, overlappingDone);
            taker(true, 8192, 12288, disjoint, disjointDone);
            assertThat(disjointDone.await(30, TimeUnit.SECONDS)).isTrue();
            assertThat(disjoint).isTrue();
            // The overlapping request is still parked: it cannot have its lock while ours is held.
            while (waiter.getState() != Thread.State.WAITING) {
                Thread.onSpinWait();
            }
            assertThat(overlapping).isFalse();
        }
        assertThat(overlappingDone.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(overlapping).isTrue();
    }

    @Test
    void aWaitingExclusiveRequestIsNotOvertakenByLaterSharedOnes() throws Exception {
        AtomicBoolean exclusive = new AtomicBoolean();
        AtomicBoolean laterShared = new AtomicBoolean();
        CountDownLatch exclusiveDone = new CountDownLatch(1);
        CountDownLatch sharedDone = new CountDownLatch(1);
        try (RangeLock.Held first = locks.lockShared(0, 4096)) {
            Thread ex = taker(true, 0, 4096, exclusive, exclusiveDone);
            while (ex.getState() != Thread.State.WAITING) {
                Thread.onSpinWait();
            }
            Thread sh = taker(false, 0, 4096, laterShared, sharedDone);
            while (sh.getState() != Thread.State.WAITING) {
                Thread.onSpinWait();
            }
            assertThat(exclusive).isFalse();
            assertThat(laterShared).as("queued behind the exclusive request").isFalse();
        }
        assertThat(exclusiveDone.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(sharedDone.await(30, TimeUnit.SECONDS)).isTrue();
    }
}
