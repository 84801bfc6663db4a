package io.jblock.cli.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static io.jblock.cli.io.QemuIoOracle.IMG;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * aio=native ({@code -k}, {@code -i native}) and aio=io_uring
 * ({@code -i io_uring}): jblock has only the threads engine so far, and it
 * never runs a request on another engine than the one asked for. Until the
 * engines exist, these runs fail with the engine's clear error and exit
 * status 1 where qemu-io succeeds, so they are not in {@link IoCompatTest}.
 * The io_uring engine (a later issue) will make them compare with qemu-io
 * again: move them back then. Options checked before any engine is asked
 * for (native without cache.direct) still compare there.
 */
class IoAioEngineTest {
    private static final String NATIVE = "qemu-io: can't open device IMG: aio=native is not available yet in "
            + "this build of jblock\n";
    private static final String IO_URING = "qemu-io: can't open device IMG: aio=io_uring is not available yet in "
            + "this build of jblock\n";

    private static Path image(Path dir) throws Exception {
        Path p = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        return p;
    }

    @Test
    void nativeAioThroughDashKFailsWithTheEnginesErrorInsteadOfFallingBackToThreads(@TempDir Path dir)
            throws Exception {
        Path img = image(dir);
        QemuIoOracle.Outcome o = QemuIoOracle.runJblock(List.of("-k", "-n", "-f", "raw", IMG, "-c", "read 0 4k"),
                null, img);
        assertThat(o.stderr()).isEqualTo(NATIVE);
        assertThat(o.stdout()).isEmpty();
        assertThat(o.status()).isEqualTo(1);
    }

    @Test
    void ioUringFailsWithTheEnginesErrorAndLeavesTheImageAlone(@TempDir Path dir) throws Exception {
        Path img = image(dir);
        QemuIoOracle.Outcome o = QemuIoOracle.runJblock(
                List.of("-i", "io_uring", "-f", "raw", IMG, "-c", "write 0 4k", "-c", "read 0 4k"), null, img);
        assertThat(o.stderr()).isEqualTo(IO_URING);
        assertThat(o.stdout()).isEmpty();
        assertThat(o.status()).isEqualTo(1);
        assertThat(Files.readAllBytes(img)).containsOnly(0);
    }

    @Test
    void theOpenCommandGivesTheSameErrorsAndLeavesNoImageOpen(@TempDir Path dir) throws Exception {
        Path img = image(dir);
        QemuIoOracle.Outcome o = QemuIoOracle.runJblock(List.of("-c", "open -i native -n -o driver=raw " + IMG,
                "-c", "read 0 4k", "-c", "open -k -o driver=raw " + IMG, "-c", "open -i io_uring " + IMG), null, img);
        assertThat(o.stderr()).isEqualTo(NATIVE + "no file open, try 'help open'\n"
                // Without cache.direct, native AIO is refused before any engine is asked for, as qemu-io does.
                + "qemu-io: can't open device IMG: aio=native was specified, but it requires cache.direct=on, "
                + "which was not specified.\n" + IO_URING);
        assertThat(o.stdout()).isEmpty();
        assertThat(o.status()).isEqualTo(1);
    }
}
