package io.jblock.cli.io;

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
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs one qemu-io script twice: through the real qemu-io 7.2 (a
 * subprocess) on one copy of an image, and through jblock's IoTool
 * (in-process, named qemu-io) on another, and gives both results with only
 * what legitimately differs masked: timings and rates, the images' paths,
 * and QEMU's generated node names.
 */
final class QemuIoOracle {
    /** Stands for the image's path in a script's arguments. */
    static final String IMG = "@IMG@";
    static final Path QEMU_IO = Path.of("/usr/bin/qemu-io");
    static final Path QEMU_IMG = Path.of("/usr/bin/qemu-img");

    private static final Pattern STATS = Pattern.compile("(?m)^(.*, \\d+ ops; ).*$");
    private static final Pattern MACHINE_STATS = Pattern.compile("(?m)^(-?\\d+),(\\d+),[0-9:.]+,[^,\\n]+,[^,\\n]+$");
    private static final Pattern NODE_NAME = Pattern.compile("#block\\d+");
    /** The end of the usage text, where jblock deliberately differs (see IoTool.BUG_REPORTS). */
    private static final Pattern QEMU_BUG_REPORTS = Pattern.compile(
            "See <https://qemu.org/contribute/report-a-bug> for how to report bugs.\n"
                    + "More information on the QEMU project at <https://qemu.org>.\n");

    /** What one tool did: its output streams, exit status and the image it worked on. */
    record Outcome(String stdout, String stderr, int status, Path image) {
    }

    private QemuIoOracle() {
    }

    /** Fails (never skips) when the QEMU tools are missing: the comparison is the point. */
    static void requireQemu() {
        assertThat(QEMU_IO).as("qemu-io 7.2 (Debian package qemu-utils) is needed as the oracle").isExecutable();
        assertThat(QEMU_IMG).as("qemu-img is needed to create test images").isExecutable();
    }

    /** A raw image made by qemu-img, then written by qemu-io {@code setup} commands (if any). */
    static Path createImage(Path dir, String size, List<String> setup) throws IOException, InterruptedException {
        Path img = dir.resolve("test.img");
        exec(List.of(QEMU_IMG.toString(), "create", "-q", "-f", "raw", img.toString(), size), null, dir);
        if (!setup.isEmpty()) {
            List<String> cmd = new ArrayList<>(List.of(QEMU_IO.toString(), "-f", "raw"));
            for (String c : setup) {
                cmd.add("-c");
                cmd.add(c);
            }
            cmd.add(img.toString());
            Outcome o = exec(cmd, null, dir);
            assertThat(o.status()).as("setup of the test image: " + o.stderr()).isZero();
        }
        return img;
    }

    static Outcome runQemu(List<String> args, String stdin, Path image) throws IOException, InterruptedException {
        // Started as "qemu-io" (argv[0]), as from a shell's PATH: glibc's getopt names argv[0] in its messages.
        List<String> cmd = new ArrayList<>(List.of("/bin/bash", "-c", "exec -a qemu-io \"$0\" \"$@\"",
                QEMU_IO.toString()));
        for (String a : args) {
            cmd.add(a.replace(IMG, image.toString()));
        }
        Outcome o = exec(cmd, stdin, image.getParent());
        return new Outcome(mask(o.stdout(), image), mask(o.stderr(), image), o.status(), image);
    }

    static Outcome runJblock(List<String> args, String stdin, Path image) throws IOException {
        String[] argv = args.stream().map(a -> a.replace(IMG, image.toString())).toArray(String[]::new);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Main.run("qemu-io", argv,
                    new ByteArrayInputStream((stdin == null ? "" : stdin).getBytes(StandardCharsets.UTF_8)), o, e);
        }
        return new Outcome(mask(out.toString(StandardCharsets.UTF_8), image),
                mask(err.toString(StandardCharsets.UTF_8), image), status, image);
    }

    static String mask(String text, Path image) {
        String s = text.replace(image.toString(), "IMG").replace(IoTool.BUG_REPORTS, "BUG REPORTS\n");
        s = QEMU_BUG_REPORTS.matcher(s).replaceAll("BUG REPORTS\n");
        s = STATS.matcher(s).replaceAll("$1TIME");
        s = MACHINE_STATS.matcher(s).replaceAll("$1,$2,TIME");
        return NODE_NAME.matcher(s).replaceAll("#blockN");
    }

    private static Outcome exec(List<String> cmd, String stdin, Path dir) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
        Path out = Files.createTempFile(dir, "stdout", ".txt");
        Path err = Files.createTempFile(dir, "stderr", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        try (var in = p.getOutputStream()) {
            if (stdin != null) {
                in.write(stdin.getBytes(StandardCharsets.UTF_8));
            }
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("timed out: " + cmd);
        }
        Outcome o = new Outcome(Files.readString(out), Files.readString(err), p.exitValue(), null);
        Files.delete(out);
        Files.delete(err);
        return o;
    }
}
