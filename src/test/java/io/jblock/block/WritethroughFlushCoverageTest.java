package io.jblock.block;

import io.jblock.engine.EngineFile;
import io.jblock.engine.ForwardingEngineFile;
import io.jblock.engine.IoEngine;
import io.jblock.engine.ThreadsEngine;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The durability rule of writethrough and directsync, with many writes in
 * flight sharing fdatasyncs: a write is acknowledged only after an fdatasync
 * that <em>started after its data reached the OS</em> has completed
 * successfully. The engine stamps every event on one clock (a write's data
 * reaching the OS, an fdatasync's start and end) and sleeps for seeded random
 * times, so requests interleave differently per seed; the test then checks
 * every acknowledgement against the fdatasyncs, and that they were shared
 * (fewer fdatasyncs than writes).
 */
class WritethroughFlushCoverageTest {
    private static final int THREADS = 16;
    private static final int WRITES_PER_THREAD = 25;
    private static final int BLOCK = 4096;

    @TempDir
    Path dir;

    /** One fdatasync: clock ticks at its start and end, and whether it succeeded. */
    private record Sync(long start, long end, boolean ok) {
    }

    /** The threads engine, stamping and delaying writes and fdatasyncs; the n-th datasync may fail. */
    private static final class StampingEngine implements IoEngine {
        final AtomicLong clock = new AtomicLong();
        final ConcurrentLinkedQueue<Sync> syncs = new ConcurrentLinkedQueue<>();
        final AtomicInteger datasyncCalls = new AtomicInteger();
        final long seed;
        /** 1-based number of the fdatasync that fails, 0 for none. */
        final int failingSync;
        /** Per thread: the tick at which its last write's data reached the OS. */
        final ThreadLocal<long[]> lastWriteDone = ThreadLocal.withInitial(() -> new long[1]);

        StampingEngine(long seed, int failingSync) {
            this.seed = seed;
            this.failingSync = failingSync;
        }

        @Override
        public String name() {
            return "threads";
        }

        @Override
        public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
            Random random = new Random(seed);
            Object randomLock = new Object();
            return new ForwardingEngineFile(ThreadsEngine.INSTANCE.open(path, readOnly, direct)) {
                private long pause(int maxMicros) {
                    synchronized (randomLock) {
                        return random.nextInt(maxMicros + 1) * 1000L;
                    }
                }

                @Override
                public int write(ByteBuffer src, long pos) throws IOException {
                    LockSupport.parkNanos(pause(300));
                    int n = super.write(src, pos);
                    lastWriteDone.get()[0] = clock.incrementAndGet();
                    return n;
                }

                @Override
                public void datasync() throws IOException {
                    int call = datasyncCalls.incrementAndGet();
                    long start = clock.incrementAndGet();
                    LockSupport.parkNanos(pause(2000));
                    boolean ok = call != failingSync;
                    try {
                        if (!ok) {
                            throw new IOException("Input/output error");
                        }
                        super.datasync();
                    } finally {
                        syncs.add(new Sync(start, clock.incrementAndGet(), ok));
                    }
                }
            };
        }
    }

    /** One write as the test saw it: when its data reached the OS, when it was acknowledged or failed. */
    private record Outcome(long dataInOs, long returned, boolean acknowledged) {
    }

    @ParameterizedTest(name = "cache={0}, seed={1}")
    @CsvSource({
        "writethrough, 1", "writethrough, 2", "writethrough, 3",
        "directsync, 4", "directsync, 5",
    })
    void everyAcknowledgedWriteIsCoveredByAnFdatasyncThatStartedAfterIt(String cache, long seed) throws Exception {
        System.out.println("seed " + seed);
        StampingEngine engine = new StampingEngine(seed, 0);
        List<Outcome> outcomes = runWrites(cache, engine);

        assertThat(outcomes).hasSize(THREADS * WRITES_PER_THREAD).allMatch(Outcome::acknowledged);
        List<Sync> syncs = List.copyOf(engine.syncs);
        for (Outcome o : outcomes) {
            assertThat(syncs).as("seed %d: a completed fdatasync that started after tick %d and ended before"
                    + " the acknowledgement at tick %d", seed, o.dataInOs(), o.returned())
                    .anyMatch(s -> s.ok() && s.start() > o.dataInOs() && s.end() < o.returned());
        }
        assertThat(syncs.size()).as("seed %d: fdatasyncs shared by the writes in flight", seed)
                .isLessThan(outcomes.size());
    }

    @ParameterizedTest(name = "cache={0}, seed={1}")
    @CsvSource({"writethrough, 6", "writethrough, 7", "directsync, 8"})
    void whenAnFdatasyncFailsNoWriteItCoveredIsAcknowledged(String cache, long seed) throws Exception {
        System.out.println("seed " + seed);
        StampingEngine engine = new StampingEngine(seed, 3);
        List<Outcome> outcomes = runWrites(cache, engine);

        List<Sync> syncs = List.copyOf(engine.syncs);
        assertThat(syncs).as("seed %d", seed).anyMatch(s -> !s.ok());
        assertThat(outcomes).as("seed %d: writes that failed", seed).anyMatch(o -> !o.acknowledged());
        for (Outcome o : outcomes) {
            if (o.acknowledged()) {
                assertThat(syncs).as("seed %d: acknowledged at tick %d, data in the OS at tick %d", seed,
                        o.returned(), o.dataInOs())
                        .anyMatch(s -> s.ok() && s.start() > o.dataInOs() && s.end() < o.returned());
            }
        }
        Sync failed = syncs.stream().filter(s -> !s.ok()).findFirst().orElseThrow();
        // After a failed fdatasync the kernel may have dropped pages (fsyncgate): no later fdatasync is
        // even tried, so none can pass for proof that those pages are safe, and every later write fails.
        assertThat(syncs).as("seed %d", seed).noneMatch(s -> s.start() > failed.end());
        assertThat(outcomes).as("seed %d", seed).noneMatch(o -> o.acknowledged() && o.returned() > failed.end()
                && o.dataInOs() > failed.start());
    }

    /** THREADS writers, each writing its own blocks through one drive; returns every write's outcome. */
    private List<Outcome> runWrites(String cache, StampingEngine engine) throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[THREADS * WRITES_PER_THREAD * BLOCK]);
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), mode -> engine));
        ConcurrentLinkedQueue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=raw,cache=" + cache));
        try (Arena arena = Arena.ofShared()) {
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int id = t;
                ByteBuffer block = arena.allocate(BLOCK, BLOCK).asByteBuffer();
                // Half platform threads (the engine's pwrite path), half virtual (its FileChannel path).
                Thread.Builder builder = id % 2 == 0 ? Thread.ofPlatform() : Thread.ofVirtual();
                threads.add(builder.start(() -> {
                    try {
                        go.await();
                    } catch (InterruptedException e) {
                        return;
                    }
                    for (int i = 0; i < WRITES_PER_THREAD; i++) {
                        long offset = ((long) i * THREADS + id) * BLOCK;
                        boolean ok;
                        try {
                            d.write(offset, block.clear(), 0);
                            ok = true;
                        } catch (BlockException e) {
                            ok = false;
                        }
                        outcomes.add(new Outcome(engine.lastWriteDone.get()[0], engine.clock.incrementAndGet(),
                                ok));
                    }
                }));
            }
            go.countDown();
            for (Thread t : threads) {
                t.join();
            }
        } finally {
            try {
                d.close();
            } catch (BlockException e) {
                // After a failed fdatasync the closing flush fails too; the test looks at the writes.
            }
        }
        return List.copyOf(outcomes);
    }
}
