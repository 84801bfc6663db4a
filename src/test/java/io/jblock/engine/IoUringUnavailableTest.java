package io.jblock.engine;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Where io_uring_setup is forbidden (a seccomp filter, as in many
 * containers), aio=io_uring fails as qemu-io's does, and the default
 * threads engine keeps working. Both tools run under the same filter
 * (src/test/resources/io/jblock/engine/without-io_uring.py).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class IoUringUnavailableTest {
    private static final Path QEMU_IO = Path.of("/usr/bin/qemu-io");
    private static final Path PYTHON = Path.of("/usr/bin/python3");

    @TempDir
    Path dir;

    record Run(String stdout, String stderr, int status) {
    }

    private Run run(String errno, Path image, List<String> command) throws IOException, InterruptedException {
        Path filter = dir.resolve("without-io_uring.py");
        try (var in = getClass().getResourceAsStream("without-io_uring.py")) {
            assertThat(in).as("the seccomp helper script").isNotNull();
            Files.write(filter, in.readAllBytes());
        }
        List<String> cmd = new ArrayList<>(List.of(PYTHON.toString(), filter.toString()));
        cmd.addAll(command);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
        pb.environment().put("ERRNO", errno);
        pb.redirectOutput(dir.resolve("out").toFile()).redirectError(dir.resolve("err").toFile());
        Process p = pb.start();
        assertThat(p.waitFor(100, TimeUnit.SECONDS)).as("finished: " + cmd).isTrue();
        String img = image.toString();
        return new Run(Files.readString(dir.resolve("out"), StandardCharsets.UTF_8).replace(img, "IMG"),
                Files.readString(dir.resolve("err"), StandardCharsets.UTF_8).replace(img, "IMG"), p.exitValue());
    }

    private List<String> jblockIo(List<String> args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Djblock.prog=qemu-io", "-cp",
                System.getProperty("java.class.path"), "io.jblock.cli.Main"));
        cmd.addAll(args);
        return cmd;
    }

    private static List<String> qemuIo(List<String> args) {
        List<String> cmd = new ArrayList<>(List.of(QEMU_IO.toString()));
        cmd.addAll(args);
        return cmd;
    }

    /** ENOSYS: a kernel or filter without io_uring; EPERM: forbidden. */
    @ParameterizedTest(name = "errno {0}")
    @ValueSource(strings = {"38", "1"})
    void ioUringFailsAsQemuIoDoesAndThreadsStillWork(String errno) throws Exception {
        assertThat(QEMU_IO).as("qemu-io 7.2 is the oracle").isExecutable();
        assertThat(PYTHON).as("python3 installs the seccomp filter").isExecutable();
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[1 << 20]);
        for (List<String> args : List.of(
                List.of("-i", "io_uring", "-f", "raw", img.toString(), "-c", "write -P 1 0 4k"),
                List.of("-f", "raw", img.toString(), "-c", "write -P 2 0 4k", "-c", "read -P 2 0 4k"))) {
            Run qemu = run(errno, img, qemuIo(args));
            Run jblock = run(errno, img, jblockIo(args));
            assertThat(jblock.stderr()).as("stderr of " + args).isEqualTo(qemu.stderr());
            // The elapsed time and rates are masked: no timing is compared.
            assertThat(jblock.stdout().replaceAll("ops; .*", "ops;")).as("stdout of " + args)
                    .isEqualTo(qemu.stdout().replaceAll("ops; .*", "ops;"));
            assertThat(jblock.status()).as("status of " + args).isEqualTo(qemu.status());
        }
        assertThat(Files.readAllBytes(img)[0]).as("the threads run wrote, the io_uring one did not").isEqualTo(
                (byte) 2);
    }
}
