package io.jblock.protocol;

import io.jblock.testing.FaultyEngine;
import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.engine.InstrumentedEngine;
import io.jblock.engine.ThreadsEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

class FileTruncateTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private Path file(int size) throws Exception {
        Path p = dir.resolve("t.img");
        Files.write(p, new byte[size]);
        return p;
    }

    @Test
    void withoutPreallocationTheFileGrowsWithAHoleAndShrinks() throws Exception {
        Path p = file(4096);
        try (FileNode node = FileTestSupport.open(p, false)) {
            long before = node.allocatedSize();
            node.truncate(8 * MIB, true, Prealloc.OFF);
            assertThat(node.length()).isEqualTo(8 * MIB);
            assertThat(node.allocatedSize()).isEqualTo(before);
            assertThat(node.blockStatus(4096, 8 * MIB).isZero()).isTrue();
            node.truncate(1000, true, Prealloc.OFF);
            assertThat(Files.size(p)).isEqualTo(1000);
        }
    }

    @Test
    void fallocPreallocationReservesTheNewPart() throws Exception {
        Path p = file(4096);
        try (FileNode node = FileTestSupport.open(p, false)) {
            long before = node.allocatedSize();
            node.truncate(8 * MIB, true, Prealloc.FALLOC);
            assertThat(node.length()).isEqualTo(8 * MIB);
            assertThat(node.allocatedSize()).isGreaterThanOrEqualTo(before + 8 * MIB - 4096);
        }
    }

    @Test
    void fallocPreallocationFailsClearlyWhereTheFileSystemCannotAllocate() throws Exception {
        Path p = file(4096);
        FaultyEngine faulty = new FaultyEngine();
        faulty.canAllocate = false;
        try (FileNode node = FileTestSupport.open(faulty, p, false)) {
            assertThatThrownBy(() -> node.truncate(MIB, true, Prealloc.FALLOC))
                    .isInstanceOfSatisfying(BlockException.class, e -> {
                        assertThat(e.errno()).isEqualTo(Errno.ENOTSUP);
                        assertThat(e.getMessage()).startsWith("Could not preallocate new data")
                                .contains("fallocate");
                    });
            assertThat(node.length()).isEqualTo(4096);
        }
    }

    @Test
    void fullPreallocationWritesZeroesInBoundedChunksAndSyncs() throws Exception {
        Path p = file(100);
        Files.write(p, new byte[] {1, 2, 3});
        InstrumentedEngine counted = new InstrumentedEngine(ThreadsEngine.INSTANCE);
        try (FileNode node = FileTestSupport.open(counted, p, false)) {
            node.truncate(5 * MIB + 7, true, Prealloc.FULL);
            assertThat(Files.size(p)).as("the file keeps its exact size").isEqualTo(5 * MIB + 7);
            assertThat(node.length()).as("seen in whole sectors, as QEMU does").isEqualTo(5 * MIB + 512);
            assertThat(node.allocatedSize()).isGreaterThanOrEqualTo(5 * MIB);
            assertThat(counted.counters(p).writes()).isGreaterThanOrEqualTo(6);
            assertThat(counted.counters(p).datasyncs()).isEqualTo(1);
            ByteBuffer head = ByteBuffer.allocate(4);
            node.read(0, head);
            assertThat(head.array()).containsExactly(1, 2, 3, 0);
            assertThat(node.blockStatus(0, 5 * MIB + 7).isData()).isTrue();
            assertThat(node.blockStatus(0, 5 * MIB + 7).length()).isEqualTo(5 * MIB + 7);
        }
    }

    @Test
    void metadataPreallocationIsRefusedWithQemusMessage() throws Exception {
        Path p = file(MIB);
        String ours;
        try (FileNode node = FileTestSupport.open(p, false)) {
            BlockException e = (BlockException) catchThrowable(() -> node.truncate(2 * MIB, true, Prealloc.METADATA));
            assertThat(e.errno()).isEqualTo(Errno.ENOTSUP);
            ours = e.getMessage();
            assertThat(node.length()).isEqualTo(MIB);
        }
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-img", "resize", "--preallocation=metadata", "-f", "raw",
                p.toString(), "2M");
        assertThat(qemu.exit()).isEqualTo(1);
        assertThat(qemu.stderr().strip()).isEqualTo("qemu-img: " + ours);
    }

    @Test
    void preallocationCannotShrink() throws Exception {
        Path p = file(MIB);
        try (FileNode node = FileTestSupport.open(p, false)) {
            assertThatThrownBy(() -> node.truncate(4096, true, Prealloc.FULL))
                    .hasMessage("Cannot use preallocation for shrinking files");
            assertThat(node.length()).isEqualTo(MIB);
        }
    }

    @Test
    void fullPreallocationWorksUnderDirectIo() throws Exception {
        Path p = file(1000);
        try (FileNode node = FileTestSupport.open(p, true)) {
            node.truncate(3 * MIB, true, Prealloc.FULL);
            assertThat(node.length()).isEqualTo(3 * MIB);
            ByteBuffer b = ByteBuffer.allocate(3 * MIB);
            node.read(0, b);
            assertThat(b.array()).containsOnly(0);
        }
    }
}
