package io.jblock.protocol;

import io.jblock.testing.FaultyEngine;
import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.engine.InstrumentedEngine;
import io.jblock.engine.ThreadsEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class FileFlushTest {
    @TempDir
    Path dir;

    private Path file() throws Exception {
        Path p = dir.resolve("f.img");
        Files.write(p, new byte[1 << 16]);
        return p;
    }

    @Test
    void afterOneFailedDatasyncThatFlushAndEveryLaterFlushFail() throws Exception {
        Path p = file();
        FaultyEngine faulty = new FaultyEngine();
        InstrumentedEngine counted = new InstrumentedEngine(faulty);
        faulty.failingDatasyncs.set(1);
        try (FileNode node = FileTestSupport.open(counted, p, false)) {
            node.write(0, ByteBuffer.wrap(new byte[] {1}), 0);
            assertThatThrownBy(node::flush).isInstanceOfSatisfying(BlockException.class,
                    e -> assertThat(e.errno()).isEqualTo(Errno.EIO));
            assertThat(faulty.failingDatasyncs).hasValue(0);

            // The disk would now accept an fdatasync, but the data of the failed one may be gone.
            node.write(1, ByteBuffer.wrap(new byte[] {2}), 0);
            assertThatThrownBy(node::flush).isInstanceOf(BlockException.class)
                    .hasMessageContaining("an earlier fdatasync");
            assertThatThrownBy(node::flush).isInstanceOf(BlockException.class);
            assertThat(counted.counters(p).datasyncs()).isEqualTo(1);
        }
    }

    @Test
    void directIoStillFlushesWithFdatasync() throws Exception {
        Path p = file();
        InstrumentedEngine counted = new InstrumentedEngine(ThreadsEngine.INSTANCE);
        try (FileNode node = FileTestSupport.open(counted, p, true)) {
            node.flush();
            assertThat(counted.counters(p).datasyncs()).as("nothing written yet").isZero();
            node.write(0, ByteBuffer.wrap(new byte[] {1}), 0);
            node.flush();
            assertThat(counted.counters(p).datasyncs()).isEqualTo(1);
        }
    }
}
