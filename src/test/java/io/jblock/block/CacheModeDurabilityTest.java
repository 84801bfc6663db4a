package io.jblock.block;

import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import io.jblock.testing.CountingEngine;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What reaches the disk, per cache mode, counted at the engine: N writes and
 * M flushes (each flush after at least one write) make 0 fdatasync calls
 * under unsafe, M under writeback and none, N under writethrough and
 * directsync, as {@code qemu-img bench --flush-interval} shows with QEMU.
 */
class CacheModeDurabilityTest {
    static final int WRITES = 64;
    static final int FLUSH_EVERY = 8;
    static final int FLUSHES = WRITES / FLUSH_EVERY;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "cache={0}: {1} fdatasync calls")
    @CsvSource({
        "unsafe, 0",
        "volatile, 0",
        "writeback, " + FLUSHES,
        "none, " + FLUSHES,
        "off, " + FLUSHES,
        "writethrough, " + WRITES,
        "directsync, " + WRITES,
    })
    void fdatasyncCallsFollowTheCacheMode(String mode, long expectedDatasyncs) throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[1 << 20]);
        CountingEngine engine = new CountingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), CountingEngine.provider(engine)));
        DriveConfig c = DriveConfig.parseDrive("file=" + img + ",format=raw,cache=" + mode);
        try (Arena arena = Arena.ofConfined(); Drive d = opener.open(c)) {
            // Aligned direct memory, so the same loop runs under O_DIRECT.
            ByteBuffer block = arena.allocate(4096, 4096).asByteBuffer();
            for (int i = 0; i < WRITES; i++) {
                block.clear();
                while (block.hasRemaining()) {
                    block.put((byte) i);
                }
                block.flip();
                d.write((long) i * 4096, block, WriteFlags.NONE);
                if ((i + 1) % FLUSH_EVERY == 0) {
                    d.flush();
                }
            }
            assertThat(engine.datasyncs()).as("fdatasync calls").isEqualTo(expectedDatasyncs);
            assertThat(d.stats().diskFlushes()).as("drive's count of disk flushes").isEqualTo(expectedDatasyncs);
            assertThat(d.stats().flushRequests()).as("flushes acknowledged").isEqualTo(FLUSHES);
            assertThat(d.stats().writes()).isEqualTo(WRITES);
            assertThat(engine.writes()).as("writes reach the file in every mode").isEqualTo(WRITES);
        }
        byte[] data = Files.readAllBytes(img);
        for (int i = 0; i < WRITES; i++) {
            assertThat(data[i * 4096]).isEqualTo((byte) i);
            assertThat(data[i * 4096 + 4095]).isEqualTo((byte) i);
        }
    }

    @ParameterizedTest(name = "cache={0}")
    @CsvSource({"writeback", "writethrough", "none", "directsync"})
    void afterOneFailedFdatasyncEveryLaterFlushFails(String mode) throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[1 << 16]);
        CountingEngine engine = new CountingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), CountingEngine.provider(engine)));
        Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=raw,cache=" + mode));
        try (Arena arena = Arena.ofConfined()) {
            ByteBuffer block = arena.allocate(4096, 4096).asByteBuffer();
            engine.faults.failingDatasyncs.set(1);
            boolean writethrough = mode.equals("writethrough") || mode.equals("directsync");
            if (writethrough) {
                // The write's own FUA flush fails, so the write fails.
                org.assertj.core.api.Assertions.assertThatThrownBy(() -> d.write(0, block.duplicate(), 0))
                        .isInstanceOf(BlockException.class);
            } else {
                d.write(0, block.duplicate(), 0);
                org.assertj.core.api.Assertions.assertThatThrownBy(d::flush).isInstanceOf(BlockException.class);
            }
            // The kernel may have dropped the dirty pages: no later flush may claim success,
            // not even when datasync itself would now succeed, nor after new writes.
            org.assertj.core.api.Assertions.assertThatThrownBy(d::flush)
                    .isInstanceOf(BlockException.class).hasMessageContaining("earlier fdatasync");
            if (!writethrough) {
                d.write(4096, block.duplicate(), 0);
            }
            org.assertj.core.api.Assertions.assertThatThrownBy(d::flush).isInstanceOf(BlockException.class);
        }
        // Closing flushes, so it reports the loss too (and still closes the file).
        org.assertj.core.api.Assertions.assertThatThrownBy(d::close).isInstanceOf(BlockException.class)
                .hasMessageContaining("earlier fdatasync");
    }

    @ParameterizedTest(name = "cache={0}")
    @CsvSource({"unsafe", "writeback"})
    void flushWithNothingWrittenDoesNoIo(String mode) throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[1 << 16]);
        CountingEngine engine = new CountingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), CountingEngine.provider(engine)));
        try (Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=raw,cache=" + mode))) {
            d.flush();
            d.flush();
            d.read(0, ByteBuffer.allocate(512));
            d.flush();
            assertThat(engine.datasyncs()).isZero();
            assertThat(engine.writes()).isZero();
            assertThat(d.stats().flushRequests()).isEqualTo(3);
        }
    }
}
