package io.jblock.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The FFM calls behind the threads engine, seen through their effect on a real file. */
class ThreadsEngineSpaceTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private Path fullFile(String name, int size) throws IOException {
        Path p = dir.resolve(name);
        byte[] data = new byte[size];
        Arrays.fill(data, (byte) 0x5a);
        Files.write(p, data);
        return p;
    }

    private static byte[] read(EngineFile f, long pos, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        while (b.hasRemaining() && f.read(b, pos + b.position()) >= 0) {
            // keep reading
        }
        return b.array();
    }

    @Test
    void aPunchedHoleIsSeenBySeekHoleReadsZeroAndFreesItsBlocks() throws Exception {
        Path p = fullFile("punch.img", MIB);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, false, false)) {
            long before = f.allocatedSize();
            assertThat(f.seekHole(0)).isEqualTo(MIB);

            assertThat(f.punchHole(256 * 1024, 256 * 1024)).isTrue();

            assertThat(f.seekHole(0)).isEqualTo(256 * 1024);
            assertThat(f.seekData(256 * 1024)).isEqualTo(512 * 1024);
            assertThat(f.allocatedSize()).isEqualTo(before - 256 * 1024);
            assertThat(read(f, 256 * 1024, 256 * 1024)).containsOnly(0);
            assertThat(f.size()).isEqualTo(MIB);
        }
    }

    @Test
    void zeroRangeReadsZeroAndGrowsTheFileOnlyWithoutKeepSize() throws Exception {
        Path p = fullFile("zero.img", MIB);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, false, false)) {
            assertThat(f.zeroRange(4096, 8192, true)).isTrue();
            assertThat(read(f, 4096, 8192)).containsOnly(0);
            assertThat(read(f, 0, 4096)).containsOnly(0x5a);
            assertThat(read(f, 12288, 4096)).containsOnly(0x5a);

            assertThat(f.zeroRange(MIB, 4096, true)).isTrue();
            assertThat(f.size()).isEqualTo(MIB);
            assertThat(f.zeroRange(MIB, 4096, false)).isTrue();
            assertThat(f.size()).isEqualTo(MIB + 4096);
            assertThat(read(f, MIB, 4096)).containsOnly(0);
        }
    }

    @Test
    void allocateReservesBlocksAndGrowsThePastTheEnd() throws Exception {
        Path p = dir.resolve("alloc.img");
        Files.createFile(p);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, false, false)) {
            assertThat(f.allocatedSize()).isZero();
            assertThat(f.allocate(0, MIB)).isTrue();
            assertThat(f.size()).isEqualTo(MIB);
            assertThat(f.allocatedSize()).isGreaterThanOrEqualTo(MIB);
            assertThat(read(f, 0, 4096)).containsOnly(0);
        }
    }

    @Test
    void truncateGrowsWithAHoleAndSeekDataFindsNoDataInIt() throws Exception {
        Path p = fullFile("grow.img", 4096);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, false, false)) {
            long before = f.allocatedSize();
            f.truncate(MIB);
            assertThat(f.size()).isEqualTo(MIB);
            assertThat(f.allocatedSize()).isEqualTo(before);
            assertThat(f.seekData(4096)).as("no more data: ENXIO").isEqualTo(-1);
            assertThat(f.seekHole(0)).isEqualTo(4096);
            assertThat(f.seekHole(MIB)).as("at the end: ENXIO").isEqualTo(-1);
            f.truncate(100);
            assertThat(f.size()).isEqualTo(100);
        }
    }

    @Test
    void openFailuresCarryTheErrnoOfOpen() {
        assertThatThrownBy(() -> ThreadsEngine.INSTANCE.open(dir.resolve("missing"), true, false))
                .isInstanceOfSatisfying(ErrnoException.class, e -> {
                    assertThat(e.errno()).isEqualTo(2);
                    assertThat(e.reason()).isEqualTo("No such file or directory");
                });
        assertThatThrownBy(() -> ThreadsEngine.INSTANCE.open(dir, false, false))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(21));
        assertThatThrownBy(() -> ThreadsEngine.INSTANCE.open(dir, true, false))
                .isInstanceOf(NotRegularFileException.class);
    }

    @Test
    void aReadOnlyOpenCannotChangeTheFile() throws Exception {
        Path p = fullFile("ro.img", 8192);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, true, false)) {
            assertThatThrownBy(() -> f.write(ByteBuffer.allocate(1), 0)).isInstanceOf(Exception.class);
            assertThatThrownBy(() -> f.punchHole(0, 4096)).isInstanceOf(ErrnoException.class);
            assertThat(read(f, 0, 8192)).containsOnly(0x5a);
        }
    }

    @Test
    void directOpenProbesTheSmallestAlignmentThatActuallyWorks() throws Exception {
        Path p = fullFile("direct.img", MIB);
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, false, true); Arena arena = Arena.ofConfined()) {
            int a = f.alignment();
            assertThat(Integer.bitCount(a)).isEqualTo(1);
            assertThat(a).isBetween(512, 65536);
            ByteBuffer buf = arena.allocate(2L * a, a).asByteBuffer();
            assertThat(f.read(buf.clear().limit(a), a)).isEqualTo(a);
            if (a > 512) {
                // What the probe refused, the FileChannel of virtual threads refuses too. (The pread of
                // platform threads may take it, where the kernel's own limit is smaller than the JDK's;
                // callers keep to alignment() either way.)
                int half = a / 2;
                Throwable[] thrown = new Throwable[1];
                Thread.ofVirtual().start(() -> {
                    try {
                        f.read(buf.clear().limit(half), half);
                    } catch (Throwable t) {
                        thrown[0] = t;
                    }
                }).join();
                assertThat(thrown[0]).isInstanceOf(IOException.class);
            }
        }
    }
}
