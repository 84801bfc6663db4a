package io.jblock.cli.img;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Comparison of jblock against qemu-img on the same command line. Paths are
 * relative to the working directory both run in (the project directory), so
 * that messages naming files are comparable byte for byte.
 */
final class CompatSupport {
    private static final AtomicInteger DIRS = new AtomicInteger();

    private CompatSupport() {
    }

    /** A fresh directory for one test, relative to the working directory, e.g. "target/img-compat/7". */
    static Path freshDir() throws IOException {
        Path d = Path.of("target", "img-compat", ProcessHandle.current().pid() + "-" + DIRS.incrementAndGet());
        if (Files.exists(d)) {
            deleteTree(d);
        }
        Files.createDirectories(d);
        return d;
    }

    static void deleteTree(Path d) throws IOException {
        if (!Files.exists(d)) {
            return;
        }
        try (var s = Files.walk(d)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    /** Runs qemu-img to set up a case; it must succeed. */
    static void qemuImg(String... a) {
        QemuImgOracle.Run r = QemuImgOracle.qemu(args(a));
        assertThat(r.status()).as("qemu-img %s: %s", List.of(a), r).isZero();
    }

    /** Runs one qemu-io command on {@code image} to set up a case; it must succeed. */
    static void qemuIo(Path image, String command) throws Exception {
        io.jblock.testing.Peers.Result r = io.jblock.testing.Peers.run(120,
                List.of(io.jblock.testing.Peers.require("qemu-io"), "-c", command, image.toString()));
        assertThat(r.exit()).as("qemu-io %s: %s %s", command, r.out(), r.err()).isZero();
    }

    static List<String> args(String... a) {
        return new ArrayList<>(Arrays.asList(a));
    }

    /** Runs both and asserts the same stdout, stderr and exit status; returns jblock's run. */
    static QemuImgOracle.Run assertSameAsQemu(List<String> args) {
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args);
        assertThat(actual).as("jblock vs qemu-img for %s", args).isEqualTo(expected);
        return actual;
    }

    /** What to do to the target before each of the two runs (make an old file, a directory...). */
    @FunctionalInterface
    interface Setup {
        void prepare(Path target) throws Exception;
    }

    /**
     * Runs the command with qemu-img, records the file it made (or left), puts
     * things back, runs it with jblock, and asserts the same output, status
     * and file: length, allocation, data extents and data.
     */
    static void assertCreatesSameAsQemu(Path target, Setup setup, List<String> args) throws Exception {
        deleteTree(target);
        setup.prepare(target);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args);
        FileState expectedFile = FileState.of(target);
        deleteTree(target);
        setup.prepare(target);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args);
        FileState actualFile = FileState.of(target);
        assertThat(actual).as("jblock vs qemu-img for %s", args).isEqualTo(expected);
        assertThat(actualFile).as("file left by %s", args).isEqualTo(expectedFile);
    }

    /** Lines of {@code text} with those at the given indexes (negative: from the end) replaced by a marker. */
    static String maskLines(String text, int... indexes) {
        List<String> lines = new ArrayList<>(Arrays.asList(text.split("\n", -1)));
        for (int i : indexes) {
            int at = i >= 0 ? i : lines.size() + i;
            lines.set(at, "<masked>");
        }
        return String.join("\n", lines);
    }
}
