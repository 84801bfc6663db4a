package io.jblock.cli.io;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.jblock.cli.io.IoScript.of;
import static io.jblock.cli.io.QemuIoOracle.IMG;

/**
 * aio=native ({@code -k}, {@code -i native}) and aio=io_uring
 * ({@code -i io_uring}) run on jblock's io_uring engine and behave as
 * qemu-io does with its Linux AIO and io_uring: the same output, exit
 * status and image, byte for byte. Options checked before any engine is
 * asked for (native without cache.direct) compare the same way.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class IoAioEngineTest {
    static List<IoScript> scripts() {
        return List.of(
                of("native AIO through -k -n: writes, unaligned writes, reads back", "-k", "-n", "-f", "raw", IMG,
                        "-c", "write -P 0xab 0 4k", "-c", "write -P 0xcd 513 1000", "-c", "read -P 0xab 0 513",
                        "-c", "read -P 0xcd 513 1000", "-c", "read -v 1500 32", "-c", "flush"),
                of("io_uring: writes, zero writes, discard and reads back", "-i", "io_uring", "-f", "raw", IMG,
                        "-c", "write -P 0x11 0 64k", "-c", "write -z 4k 8k", "-c", "discard 32k 16k",
                        "-c", "read -P 0 4k 8k", "-c", "read -P 0x11 12k 20k", "-c", "read -v 0 16",
                        "-c", "aio_write -P 0x22 128k 4k", "-c", "aio_flush", "-c", "read -P 0x22 128k 4k"),
                of("io_uring with cache=none: reads across the end of the image", "-i", "io_uring", "-t", "none",
                        "-f", "raw", IMG, "-c", "write -P 7 1040384 8k", "-c", "read -P 7 1040384 8k",
                        "-c", "read 1048000 1000").setup("write -P 9 0 1M"),
                of("open: native without cache.direct is refused, then native and io_uring open", "-f", "raw",
                        "-c", "open -i native -n -o driver=raw " + IMG, "-c", "read -P 0 0 4k",
                        "-c", "open -k -o driver=raw " + IMG, "-c", "open -i io_uring " + IMG,
                        "-c", "write -P 3 0 4k", "-c", "read -P 3 0 4k"),
                of("native without cache.direct fails before any engine", "-k", "-f", "raw", IMG,
                        "-c", "read 0 4k"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scripts")
    void jblockIoOnItsIoUringEngineBehavesAsQemuIo(IoScript script, @TempDir Path tmp) throws Exception {
        IoCompatSupport.assertSameAsQemu(script, tmp);
    }
}
