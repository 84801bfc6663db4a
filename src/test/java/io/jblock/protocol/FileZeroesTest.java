package io.jblock.protocol;

import io.jblock.testing.FaultyEngine;
import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;
import io.jblock.engine.InstrumentedEngine;
import io.jblock.engine.ThreadsEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Write-zeroes and discard on files: fallocate where the file system has it, QEMU's fallbacks where not. */
class FileZeroesTest {
    private static final int MIB = 1 << 20;
    private static final int KIB = 1024;

    @TempDir
    Path dir;

    private Path fullFile() throws Exception {
        Path p = dir.resolve("z.img");
        byte[] data = new byte[MIB];
        Arrays.fill(data, (byte) 0x33);
        Files.write(p, data);
        return p;
    }

    private static byte[] read(FileNode node, long off, int len) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(len);
        node.read(off, b);
        return b.array();
    }

    @Test
    void zeroesWithMayUnmapPunchAHole() throws Exception {
        Path p = fullFile();
        InstrumentedEngine counted = new InstrumentedEngine(ThreadsEngine.INSTANCE);
        try (FileNode node = FileTestSupport.open(counted, p, false)) {
            long before = node.allocatedSize();
            node.writeZeroes(128 * KIB, 256 * KIB, WriteFlags.MAY_UNMAP);
            assertThat(read(node, 128 * KIB, 256 * KIB)).containsOnly(0);
            assertThat(read(node, 128 * KIB - 1, 1)).containsOnly(0x33);
            assertThat(read(node, 384 * KIB, 1)).containsOnly(0x33);
            assertThat(node.allocatedSize()).isEqualTo(before - 256 * KIB);
            assertThat(node.blockStatus(128 * KIB, MIB).isZero()).isTrue();
            assertThat(counted.counters(p).writes()).isZero();
        }
    }

    @Test
    void zeroesWithoutMayUnmapKeepTheBlocksAllocated() throws Exception {
        Path p = fullFile();
        InstrumentedEngine counted = new InstrumentedEngine(ThreadsEngine.INSTANCE);
        try (FileNode node = FileTestSupport.open(counted, p, false)) {
            long before = node.allocatedSize();
            node.writeZeroes(100, 300 * KIB, WriteFlags.NONE);
            assertThat(read(node, 100, 300 * KIB)).containsOnly(0);
            assertThat(read(node, 99, 1)).containsOnly(0x33);
            assertThat(read(node, 100 + 300 * KIB, 1)).containsOnly(0x33);
            assertThat(node.allocatedSize()).isEqualTo(before);
            assertThat(counted.counters(p).writes()).isZero();
        }
    }

    @Test
    void whenTheFileSystemCannotZeroBuffersOfZeroesAreWritten() throws Exception {
        Path p = fullFile();
        FaultyEngine faulty = new FaultyEngine();
        faulty.canPunch = false;
        faulty.canZeroRange = false;
        faulty.canAllocate = false;
        InstrumentedEngine counted = new InstrumentedEngine(faulty);
        try (FileNode node = FileTestSupport.open(counted, p, false)) {
            assertThat(node.capabilities().fastZero()).isFalse();
            node.writeZeroes(4 * KIB, 3 * MIB / 4, WriteFlags.MAY_UNMAP);
            node.writeZeroes(900 * KIB, 10, WriteFlags.NONE);
            assertThat(read(node, 4 * KIB, 3 * MIB / 4)).containsOnly(0);
            assertThat(read(node, 900 * KIB, 10)).containsOnly(0);
            assertThat(read(node, 900 * KIB + 10, 1)).containsOnly(0x33);
            assertThat(counted.counters(p).writes()).isGreaterThanOrEqualTo(2);
        }
    }

    @Test
    void noFallbackFailsWithEnotsupAndLeavesTheDataAlone() throws Exception {
        Path p = fullFile();
        FaultyEngine faulty = new FaultyEngine();
        faulty.canPunch = false;
        faulty.canZeroRange = false;
        try (FileNode node = FileTestSupport.open(faulty, p, false)) {
            assertThatThrownBy(() -> node.writeZeroes(0, 8 * KIB, WriteFlags.NO_FALLBACK | WriteFlags.MAY_UNMAP))
                    .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOTSUP));
            assertThat(read(node, 0, 8 * KIB)).containsOnly(0x33);
        }
    }

    @Test
    void whenOnlyPunchingWorksZeroesWithoutUnmapPunchAndReallocate() throws Exception {
        Path p = fullFile();
        FaultyEngine faulty = new FaultyEngine();
        faulty.canZeroRange = false;
        InstrumentedEngine counted = new InstrumentedEngine(faulty);
        try (FileNode node = FileTestSupport.open(counted, p, false)) {
            assertThat(node.capabilities().fastZero()).isTrue();
            long before = node.allocatedSize();
            node.writeZeroes(64 * KIB, 64 * KIB, WriteFlags.NO_FALLBACK);
            assertThat(read(node, 64 * KIB, 64 * KIB)).containsOnly(0);
            assertThat(node.allocatedSize()).as("blocks allocated again after the punch").isEqualTo(before);
            assertThat(counted.counters(p).writes()).isZero();
        }
    }

    @Test
    void whenPunchingIsRefusedZeroesWithMayUnmapUseZeroRange() throws Exception {
        Path p = fullFile();
        FaultyEngine faulty = new FaultyEngine();
        faulty.canPunch = false;
        InstrumentedEngine counted = new InstrumentedEngine(faulty);
        try (FileNode node = FileTestSupport.open(counted, p, false)) {
            node.writeZeroes(0, 64 * KIB, WriteFlags.MAY_UNMAP | WriteFlags.NO_FALLBACK);
            assertThat(read(node, 0, 64 * KIB)).containsOnly(0);
            assertThat(counted.counters(p).writes()).isZero();
        }
    }

    @Test
    void zeroesPastTheEndGrowTheFileWithOrWithoutUnmap() throws Exception {
        Path p = fullFile();
        try (FileNode node = FileTestSupport.open(p, false)) {
            node.writeZeroes(MIB - 10, 20, WriteFlags.NONE);
            assertThat(java.nio.file.Files.size(p)).isEqualTo(MIB + 10);
            assertThat(node.length()).as("seen in whole sectors, as QEMU does").isEqualTo(MIB + 512);
            node.writeZeroes(2 * MIB, 4 * KIB, WriteFlags.MAY_UNMAP);
            assertThat(node.length()).isEqualTo(2 * MIB + 4 * KIB);
            assertThat(read(node, MIB - 10, MIB + 10 + 4 * KIB)).containsOnly(0);
            assertThat(read(node, MIB - 11, 1)).containsOnly(0x33);
        }
    }

    @Test
    void zeroesPastTheEndGrowTheFileEvenWhenOnlyAllocateWorks() throws Exception {
        Path p = fullFile();
        FaultyEngine faulty = new FaultyEngine();
        faulty.canPunch = false;
        faulty.canZeroRange = false;
        try (FileNode node = FileTestSupport.open(faulty, p, false)) {
            node.writeZeroes(MIB, 64 * KIB, WriteFlags.NO_FALLBACK);
            assertThat(node.length()).isEqualTo(MIB + 64 * KIB);
            assertThat(read(node, MIB, 64 * KIB)).containsOnly(0);
        }
    }

    @Test
    void discardPunchesAHole() throws Exception {
        Path p = fullFile();
        try (FileNode node = FileTestSupport.open(p, false)) {
            assertThat(node.capabilities().discard()).isTrue();
            long before = node.allocatedSize();
            node.discard(0, 512 * KIB);
            assertThat(node.allocatedSize()).isEqualTo(before - 512 * KIB);
            assertThat(read(node, 0, 512 * KIB)).containsOnly(0);
            assertThat(node.length()).isEqualTo(MIB);
        }
    }

    @Test
    void discardIsDroppedWhereTheFileSystemCannotPunch() throws Exception {
        Path p = fullFile();
        FaultyEngine faulty = new FaultyEngine();
        faulty.canPunch = false;
        try (FileNode node = FileTestSupport.open(faulty, p, false)) {
            node.discard(0, 512 * KIB);
            assertThat(read(node, 0, 512 * KIB)).containsOnly(0x33);
        }
    }

    @Test
    void zeroesAndDiscardsWorkUnderDirectIoAtUnalignedOffsets() throws Exception {
        Path p = fullFile();
        try (FileNode node = FileTestSupport.open(p, true)) {
            node.write(5000, ByteBuffer.wrap(new byte[] {7, 7, 7}), 0);
            node.writeZeroes(5001, 1, WriteFlags.MAY_UNMAP);
            node.writeZeroes(5002, 1, WriteFlags.NONE);
            assertThat(read(node, 4999, 5)).containsExactly(0x33, 7, 0, 0, 0x33);
            node.discard(100, 3000);
            assertThat(read(node, 100, 3000)).containsOnly(0);
            assertThat(read(node, 3100, 1)).containsOnly(0x33);
        }
    }

    @Test
    void blockStatusIsAllDataWhereTheFileSystemCannotSeekHoles() throws Exception {
        Path p = dir.resolve("sparse.img");
        try (var f = new java.io.RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(MIB);
        }
        FaultyEngine faulty = new FaultyEngine();
        faulty.canSeekHoles = false;
        try (FileNode node = FileTestSupport.open(faulty, p, false)) {
            var s = node.blockStatus(0, MIB);
            assertThat(s.isData()).isTrue();
            assertThat(s.isZero()).isFalse();
            assertThat(s.length()).isEqualTo(MIB);
        }
    }
}
