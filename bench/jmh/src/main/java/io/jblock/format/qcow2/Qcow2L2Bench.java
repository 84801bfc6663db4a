package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The qcow2 read side: decoding L2 entries, and looking guest offsets up in
 * the cluster map (through block status of a real image made by qemu-img,
 * half of whose 64 KiB clusters hold data, so runs alternate).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class Qcow2L2Bench {
    private static final int ENTRIES = 4096;
    private static final long SIZE = 256L << 20;

    private final long[] entries = new long[ENTRIES];
    private final long[] offsets = new long[ENTRIES];
    private int i;
    private Path dir;
    private Drive drive;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        Random r = new Random(7);
        for (int k = 0; k < ENTRIES; k++) {
            long host = (long) (1 + r.nextInt(1 << 20)) << 16;
            entries[k] = switch (k % 4) {
                case 0 -> host | Qcow2L2Entry.COPIED;
                case 1 -> 0;
                case 2 -> Qcow2L2Entry.ZERO;
                default -> host;
            };
            offsets[k] = (long) r.nextInt((int) (SIZE >> 16)) << 16;
        }
        dir = Files.createTempDirectory("jblock-jmh");
        Path raw = dir.resolve("half.raw");
        Path img = dir.resolve("half.qcow2");
        try (var ch = java.nio.channels.FileChannel.open(raw, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate(1 << 16);
            while (data.hasRemaining()) {
                data.put((byte) 1);
            }
            for (long off = 0; off < SIZE; off += 2 << 16) {
                ch.write(data.clear(), off);
            }
            ch.truncate(SIZE);
        }
        Process p = new ProcessBuilder("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(),
                img.toString()).inheritIO().start();
        if (p.waitFor() != 0) {
            throw new IOException("qemu-img convert failed");
        }
        DriveConfig c = new DriveConfig();
        c.filename = img.toString();
        c.readOnly = true;
        c.options.put("driver", "qcow2");
        drive = DriveOpener.standard().open(c);
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
    public Qcow2L2Entry.Type decodeEntry() {
        long e = entries[i++ & (ENTRIES - 1)];
        return Qcow2L2Entry.type(e, 0, 0, false, false);
    }

    @Benchmark
    public Object clusterMapLookupViaBlockStatus() throws BlockException {
        return drive.blockStatus(offsets[i++ & (ENTRIES - 1)], 1 << 20);
    }
}
