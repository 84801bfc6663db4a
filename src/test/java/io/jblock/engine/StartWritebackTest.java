package io.jblock.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The write-back hint (sync_file_range with SYNC_FILE_RANGE_WRITE) reaches
 * the kernel with the right arguments: accepted on an open descriptor (a
 * wrong flags or range argument would get EINVAL), refused with EBADF on a
 * closed one, and it leaves the file's data as written, on both engines.
 */
class StartWritebackTest {
    @TempDir
    Path dir;

    @Test
    void theKernelTakesTheHintOnAnOpenFileAndRefusesAClosedOne() throws Exception {
        Path p = dir.resolve("f");
        Files.write(p, new byte[8192]);
        int fd = Libc.open(p, Libc.O_RDWR);
        try {
            Libc.startWriteback(fd);
        } finally {
            Libc.close(fd);
        }
        assertThatThrownBy(() -> Libc.startWriteback(fd)).isInstanceOfSatisfying(ErrnoException.class,
                e -> assertThat(e.errno()).isEqualTo(9)); // EBADF
    }

    @Test
    void dirtyDataIsIntactAfterTheHintOnEitherEngine() throws Exception {
        byte[] data = new byte[3 << 20];
        new Random(7).nextBytes(data);
        for (IoEngine engine : new IoEngine[] {ThreadsEngine.INSTANCE, IoUringEngine.instance()}) {
            Path p = dir.resolve("g-" + engine.name());
            Files.write(p, new byte[0]);
            try (EngineFile f = engine.open(p, false, false)) {
                ByteBuffer src = ByteBuffer.allocateDirect(data.length).put(data).flip();
                while (src.hasRemaining()) {
                    f.write(src, src.position());
                }
                f.startWriteback();
                f.startWriteback(); // nothing dirty left to start, or still under way: both fine
                f.datasync();
            }
            assertThat(Files.readAllBytes(p)).as(engine.name()).isEqualTo(data);
        }
    }
}
