package io.jblock.cli.io;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * jblock io writing qcow2 images against the real qemu-io 7.2: the same
 * commands on two images qemu-img made the same way print the same text and
 * exit the same; afterwards QEMU reads both images alike
 * ({@code qemu-img compare}) and {@code qemu-img check} finds jblock's clean.
 * (The image files differ in layout, which is not part of the contract.)
 */
class IoQcow2WriteCompatTest {
    @TempDir
    Path tmp;

    record Script(String name, String options, List<String> commands) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Script> scripts() {
        return Stream.of(
                new Script("compressed writes: whole clusters only, nothing over an allocated one", "",
                        List.of("write -c 0 64k", "read -P 0xcd 0 64k", "write -c 0 4k", "write -c 4k 64k",
                                "write -c 0 64k", "write -c -P 0x11 128k 128k", "read -P 0x11 128k 128k",
                                "write -c 960k 64k", "map")),
                new Script("compressed writes with zstd", "compression_type=zstd",
                        List.of("write -c -P 0x22 64k 64k", "read -P 0x22 64k 64k", "read -P 0 0 64k", "map")),
                new Script("writes, zero-writes and discards", "",
                        List.of("write -P 0x33 1000 70000", "write -z 4096 512", "write -z -u 64k 64k",
                                "discard 192k 64k", "write -P 0x44 190k 8k", "read -P 0x33 1000 3096",
                                "read -P 0 4096 512", "read -P 0 64k 64k", "read -P 0x44 190k 8k", "map")),
                new Script("version 2: zero-writes are data", "compat=0.10",
                        List.of("write -P 0x55 0 128k", "write -z 0 64k", "discard 64k 64k", "read -P 0 0 128k",
                                "map")),
                new Script("truncate grows and shrinks", "cluster_size=4k",
                        List.of("write -P 0x77 0 100k", "truncate 2M", "length", "read -P 0 100k 64k",
                                "write -P 0x78 1900k 100k", "truncate 500k", "length", "read -P 0x77 0 100k",
                                "truncate 1001k", "read -P 0 500k 501k", "map")),
                new Script("extended L2: only touched subclusters", "extended_l2=on",
                        List.of("write -P 0x66 2k 1k", "write -z 8k 2k", "read -P 0x66 2k 1k", "read -P 0 0 2k",
                                "map")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scripts")
    void jblockIoWritesQcow2AsQemuIoDoes(Script script) throws Exception {
        QemuIoOracle.requireQemu();
        Path forQemu = create(Files.createDirectories(tmp.resolve("qemu")), script.options());
        Path forJblock = create(Files.createDirectories(tmp.resolve("jblock")), script.options());
        List<String> args = new ArrayList<>(List.of("-f", "qcow2", QemuIoOracle.IMG));
        for (String c : script.commands()) {
            args.add("-c");
            args.add(c);
        }
        QemuIoOracle.Outcome qemu = QemuIoOracle.runQemu(args, null, forQemu);
        QemuIoOracle.Outcome jblock = QemuIoOracle.runJblock(args, null, forJblock);
        assertThat(jblock.stdout()).as("stdout").isEqualTo(qemu.stdout());
        assertThat(jblock.stderr()).as("stderr").isEqualTo(qemu.stderr());
        assertThat(jblock.status()).as("exit status").isEqualTo(qemu.status());

        QemuIoOracle.Outcome check = run(List.of(QemuIoOracle.QEMU_IMG.toString(), "check", forJblock.toString()));
        assertThat(check.status()).as("qemu-img check: %s", check.stdout()).isZero();
        assertThat(check.stdout()).contains("No errors were found on the image.").doesNotContain("leaked");
        QemuIoOracle.Outcome cmp = run(List.of(QemuIoOracle.QEMU_IMG.toString(), "compare", "-f", "qcow2", "-F",
                "qcow2", forJblock.toString(), forQemu.toString()));
        assertThat(cmp.status()).as("qemu-img compare: %s", cmp.stdout()).isZero();
    }

    private static Path create(Path dir, String options) throws Exception {
        Path img = dir.resolve("test.qcow2");
        List<String> cmd = new ArrayList<>(List.of(QemuIoOracle.QEMU_IMG.toString(), "create", "-q", "-f", "qcow2"));
        if (!options.isEmpty()) {
            cmd.addAll(List.of("-o", options));
        }
        cmd.addAll(List.of(img.toString(), "1000k"));
        assertThat(run(cmd).status()).isZero();
        return img;
    }

    private static QemuIoOracle.Outcome run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        return new QemuIoOracle.Outcome(out, "", p.waitFor(), null);
    }
}
