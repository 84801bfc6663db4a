package io.jblock.cli.img;

import io.jblock.engine.EngineFile;
import io.jblock.engine.ForwardingEngineFile;
import io.jblock.engine.IoEngine;
import io.jblock.testing.FaultyEngine;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * In-order writes (convert without -W) reach the target in sector order,
 * with eight workers, across a source whose holes make every other chunk
 * one that writes nothing on a fresh target (those are not made to wait for
 * their turn) or zeroes on a given one (those are).
 */
class ConvertWriteOrderTest {
    private static final int ROUNDS = 5;
    private static Path dir;
    private static Path source;
    private static long seed;

    @BeforeAll
    static void makeSource() throws IOException {
        dir = CompatSupport.freshDir();
        seed = Long.getLong("jblock.test.seed", System.nanoTime());
        System.out.println("ConvertWriteOrderTest seed " + seed + " (rerun with -Djblock.test.seed=" + seed + ")");
        Random r = new Random(seed);
        source = dir.resolve("holes.raw");
        // Data runs of 4 KiB to 3 MiB (longer than one 2 MiB chunk) between holes of 64 KiB to 1 MiB.
        try (FileChannel ch = FileChannel.open(source, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            long at = 0;
            for (int i = 0; i < 40; i++) {
                byte[] data = new byte[(1 + r.nextInt(768)) * 4096];
                r.nextBytes(data);
                ch.write(ByteBuffer.wrap(data), at);
                at += data.length + (long) (16 + r.nextInt(241)) * 4096;
            }
            byte[] tail = new byte[4096];
            r.nextBytes(tail);
            ch.write(ByteBuffer.wrap(tail), at); // ends with data, after a hole
        }
    }

    @AfterAll
    static void removeFiles() throws IOException {
        CompatSupport.deleteTree(dir);
    }

    @Test
    void aFreshTargetIsWrittenInSectorOrder() throws Exception {
        Path out = dir.resolve("fresh.raw");
        for (int i = 0; i < ROUNDS; i++) {
            Files.deleteIfExists(out);
            List<long[]> ops = convert(out, "convert", "-m", "8", "-O", "raw", source.toString(), out.toString());
            assertAscending(ops, "fresh target, round " + i);
            assertThat(ops).as("data was written").isNotEmpty();
            assertThat(Files.mismatch(source, out)).as("target holds the source (seed %d)", seed).isEqualTo(-1);
        }
    }

    @Test
    void zeroesOnAGivenTargetKeepTheirTurn() throws Exception {
        Path out = dir.resolve("given.raw");
        byte[] junk = new byte[(int) Files.size(source)];
        new Random(seed).nextBytes(junk);
        for (int i = 0; i < ROUNDS; i++) {
            Files.write(out, junk);
            List<long[]> ops = convert(out, "convert", "-n", "-m", "8", "-O", "raw", source.toString(),
                    out.toString());
            assertAscending(ops, "given target, round " + i);
            assertThat(Files.mismatch(source, out)).as("target holds the source (seed %d)", seed).isEqualTo(-1);
        }
    }

    @Test
    void holesMeetingAtTheSeamsOfConcatenatedSourcesKeepTheOrder() throws Exception {
        // A source that starts and ends with a hole: where two meet, two chunks in a row write nothing.
        Path gap = dir.resolve("gap.raw");
        byte[] data = new byte[65536];
        new Random(seed + 1).nextBytes(data);
        try (FileChannel ch = FileChannel.open(gap, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(ByteBuffer.wrap(data), 1 << 20);
            ch.truncate(4 << 20);
        }
        Path out = dir.resolve("seams.raw");
        for (int i = 0; i < ROUNDS; i++) {
            Files.deleteIfExists(out);
            List<long[]> ops = convert(out, "convert", "-m", "8", "-O", "raw", gap.toString(), source.toString(),
                    gap.toString(), gap.toString(), out.toString());
            assertAscending(ops, "concatenated sources, round " + i);
            byte[] g = Files.readAllBytes(gap);
            byte[] src = Files.readAllBytes(source);
            byte[] expected = new byte[3 * g.length + src.length];
            System.arraycopy(g, 0, expected, 0, g.length);
            System.arraycopy(src, 0, expected, g.length, src.length);
            System.arraycopy(g, 0, expected, g.length + src.length, g.length);
            System.arraycopy(g, 0, expected, 2 * g.length + src.length, g.length);
            assertThat(Arrays.mismatch(Files.readAllBytes(out), expected)).as("target holds the sources (seed %d)", seed)
                    .isEqualTo(-1);
        }
    }

    /** Every write, hole punch and zeroed range on the target, {offset, length}, in the order they were made. */
    private static List<long[]> convert(Path target, String... argv) throws Exception {
        List<long[]> ops = new ArrayList<>();
        FaultyEngine inner = new FaultyEngine();
        IoEngine engine = new IoEngine() {
            @Override
            public String name() {
                return inner.name();
            }

            @Override
            public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
                EngineFile f = inner.open(path, readOnly, direct);
                if (!path.toAbsolutePath().equals(target.toAbsolutePath()) || readOnly) {
                    return f;
                }
                return new ForwardingEngineFile(f) {
                    @Override
                    public int write(ByteBuffer src, long pos) throws IOException {
                        record(pos, src.remaining());
                        return super.write(src, pos);
                    }

                    @Override
                    public boolean punchHole(long offset, long length) throws IOException {
                        record(offset, length);
                        return super.punchHole(offset, length);
                    }

                    @Override
                    public boolean zeroRange(long offset, long length, boolean keepSize) throws IOException {
                        record(offset, length);
                        return super.zeroRange(offset, length, keepSize);
                    }

                    private void record(long offset, long length) {
                        if (length > 1) { // not the one-byte probe of what the file system can do
                            synchronized (ops) {
                                ops.add(new long[]{offset, length});
                            }
                        }
                    }
                };
            }
        };
        ConvertRuns.convertWith(mode -> engine, argv);
        synchronized (ops) {
            return new ArrayList<>(ops);
        }
    }

    private static void assertAscending(List<long[]> ops, String what) {
        long end = 0;
        for (long[] op : ops) {
            assertThat(op[0]).as("%s: operation at %d of %d bytes came after one that ended at %d (seed %d)", what,
                    op[0], op[1], end, seed).isGreaterThanOrEqualTo(end);
            end = op[0] + op[1];
        }
    }
}
