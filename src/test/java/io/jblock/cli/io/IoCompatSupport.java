package io.jblock.cli.io;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** Runs a script through both tools on copies of one image and asserts they behave the same. */
final class IoCompatSupport {
    private IoCompatSupport() {
    }

    static void assertSameAsQemu(IoScript script, Path tmp) throws Exception {
        QemuIoOracle.requireQemu();
        // Each tool gets its own image made the same way (copying would fill sparse images).
        Path forQemu = QemuIoOracle.createImage(Files.createDirectories(tmp.resolve("qemu")), script.size(),
                script.setup());
        Path forJblock = QemuIoOracle.createImage(Files.createDirectories(tmp.resolve("jblock")), script.size(),
                script.setup());
        QemuIoOracle.Outcome qemu = QemuIoOracle.runQemu(script.args(), script.stdin(), forQemu);
        QemuIoOracle.Outcome jblock = QemuIoOracle.runJblock(script.args(), script.stdin(), forJblock);
        String context = "script " + script.args() + (script.stdin() != null ? " stdin " + script.stdin() : "");
        assertThat(jblock.stdout()).as("stdout of " + context).isEqualTo(qemu.stdout());
        assertThat(jblock.stderr()).as("stderr of " + context).isEqualTo(qemu.stderr());
        assertThat(jblock.status()).as("exit status of " + context).isEqualTo(qemu.status());
        assertThat(Files.size(jblock.image())).as("image size after " + context)
                .isEqualTo(Files.size(qemu.image()));
        assertThat(Files.mismatch(jblock.image(), qemu.image()))
                .as("first differing image byte after " + context).isEqualTo(-1);
    }
}
