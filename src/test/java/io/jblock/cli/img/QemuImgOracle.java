package io.jblock.cli.img;

import io.jblock.cli.Main;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs the real qemu-img (the oracle) and jblock's img tool in-process on the
 * same arguments, from the same working directory, and captures stdout,
 * stderr and the exit status of each.
 */
final class QemuImgOracle {
    static final Path QEMU_IMG = Path.of("/usr/bin/qemu-img");

    /** What one run printed and returned. */
    record Run(String out, String err, int status) {
        @Override
        public String toString() {
            return "status " + status + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private QemuImgOracle() {
    }

    /** Fails (never skips) when the oracle is missing. */
    static void requireQemuImg() {
        assertThat(Files.isExecutable(QEMU_IMG))
                .as("the oracle %s must be installed (Debian package qemu-utils)", QEMU_IMG).isTrue();
    }

    static Run qemu(List<String> args) {
        requireQemuImg();
        List<String> cmd = new ArrayList<>();
        cmd.add(QEMU_IMG.toString());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(Path.of("").toAbsolutePath().toFile());
        pb.environment().put("LC_ALL", "C");
        try {
            Process p = pb.start();
            p.getOutputStream().close();
            var out = p.getInputStream().readAllBytes();
            var err = p.getErrorStream().readAllBytes();
            int status = p.waitFor();
            return new Run(new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8), status);
        } catch (IOException e) {
            throw new AssertionError("could not run " + cmd, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted running " + cmd, e);
        }
    }

    /** jblock, linked as qemu-img, in this JVM. */
    static Run jblock(List<String> args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Main.run("qemu-img", args.toArray(new String[0]), new ByteArrayInputStream(new byte[0]), o, e);
        }
        return new Run(out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8), status);
    }
}
