package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The qcow2 write side of the cluster map, on a real image qemu-img made
 * with preallocation=metadata (256 MiB, 64 KiB clusters: every entry points
 * at a host cluster, all of them contiguous), open read-write, its L2 table
 * cached after the first touch:
 * <ul>
 * <li>{@code updateOneEntry}: what an allocating write does to the map, under
 *     the metadata lock: find the slice for write, set one entry (its own
 *     value, so the image stays as it was);</li>
 * <li>{@code updateOneEntryViaSlot}: the same through the older
 *     {@code Slot}-returning call, which allocates a record per call;</li>
 * <li>{@code updateRunOf16}: the 16 entries of a 1 MiB write in one step
 *     ({@code setRun}), as the multi-cluster write path does;</li>
 * <li>{@code lookupFind} / {@code lookupExtent}: the read side's lookup of one
 *     cluster, with the result in the map's fields or as an object;</li>
 * <li>{@code write4kInPlace}: a whole 4 KiB guest write through the drive
 *     (cache=unsafe: the data goes to the page cache), for its allocation
 *     per request with {@code -prof gc}.</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class Qcow2L2UpdateBench {
    private static final int OFFSETS = 4096;
    private static final long SIZE = 256L << 20;
    private static final long CLUSTER = 1 << 16;

    private final long[] offsets = new long[OFFSETS];
    private final long[] runOffsets = new long[OFFSETS];
    private final long[] entries = new long[OFFSETS];
    private final long[] runHosts = new long[OFFSETS];
    private int i;
    private Path dir;
    private Drive drive;
    private Qcow2ClusterMap map;
    private ReentrantLock meta;
    private final ByteBuffer block = ByteBuffer.allocateDirect(4096);

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        dir = Files.createTempDirectory("jblock-jmh");
        Path img = dir.resolve("meta.qcow2");
        Process p = new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata",
                img.toString(), Long.toString(SIZE)).inheritIO().start();
        if (p.waitFor() != 0) {
            throw new IOException("qemu-img create failed");
        }
        drive = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2,cache=unsafe"));
        Qcow2Node node = (Qcow2Node) drive.root();
        map = (Qcow2ClusterMap) field(node, "map");
        meta = (ReentrantLock) field(node, "meta");
        Random r = new Random(11);
        for (int k = 0; k < OFFSETS; k++) {
            offsets[k] = (long) r.nextInt((int) (SIZE / CLUSTER)) * CLUSTER;
            // A 1 MiB run inside one 4 KiB slice (512 clusters, 32 MiB): 16-cluster aligned.
            runOffsets[k] = (long) r.nextInt((int) (SIZE >> 20)) << 20;
            meta.lock();
            try {
                map.find(offsets[k], CLUSTER);
                entries[k] = map.foundEntry();
                map.find(runOffsets[k], CLUSTER);
                runHosts[k] = map.foundEntry() & Qcow2L2Entry.OFFSET_MASK;
            } finally {
                meta.unlock();
            }
        }
    }

    private static Object field(Object o, String name) throws ReflectiveOperationException {
        var f = o.getClass().getDeclaredField(name);
        f.setAccessible(true);
        return f.get(o);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        drive.close();
        try (var s = Files.walk(dir)) {
            for (Path q : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(q);
            }
        }
    }

    @Benchmark
    public void updateOneEntry() throws BlockException {
        int k = i++ & (OFFSETS - 1);
        long guest = offsets[k];
        meta.lock();
        try {
            map.set(map.sliceForWrite(guest), map.wordIndex(guest), entries[k], 0);
        } finally {
            meta.unlock();
        }
    }

    @Benchmark
    public void updateOneEntryViaSlot() throws BlockException {
        int k = i++ & (OFFSETS - 1);
        meta.lock();
        try {
            map.set(map.slotForWrite(offsets[k]), entries[k], 0);
        } finally {
            meta.unlock();
        }
    }

    @Benchmark
    public void updateRunOf16() throws BlockException {
        int k = i++ & (OFFSETS - 1);
        meta.lock();
        try {
            map.setRun(runOffsets[k], 16, runHosts[k], 0);
        } finally {
            meta.unlock();
        }
    }

    @Benchmark
    public long lookupFind() throws BlockException {
        long guest = offsets[i++ & (OFFSETS - 1)];
        meta.lock();
        try {
            long n = map.find(guest, 4096);
            return n + map.foundHost();
        } finally {
            meta.unlock();
        }
    }

    @Benchmark
    public Object lookupExtent() throws BlockException {
        long guest = offsets[i++ & (OFFSETS - 1)];
        meta.lock();
        try {
            return map.lookup(guest, 4096);
        } finally {
            meta.unlock();
        }
    }

    @Benchmark
    public void write4kInPlace() throws BlockException {
        long guest = offsets[i++ & (OFFSETS - 1)];
        drive.write(guest, block.clear(), WriteFlags.NONE);
    }
}
