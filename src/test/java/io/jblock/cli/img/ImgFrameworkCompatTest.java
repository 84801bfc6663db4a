package io.jblock.cli.img;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.stream.Stream;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static io.jblock.cli.img.CompatSupport.maskLines;
import static org.assertj.core.api.Assertions.assertThat;

/** The qemu-img command framework: standard options, command lookup, and getopt's messages. */
class ImgFrameworkCompatTest {
    static Stream<List<String>> commandLinesThatFailOrDoNothing() {
        return Stream.of(
                args(),
                args("foo"),
                args(""),
                args("-x"),
                args("--foo"),
                args("--foo=bar"),
                args("-q"),
                args("-T"),
                args("--trace"),
                args("--help=1"),
                args("--vers=1"),
                args("--"),
                args("--", "foo"),
                args("create", "-V"),
                args("create", "-x", "a.img"),
                args("create", "-xq", "a.img"),
                args("create", "a.img", "-xq"),
                args("create", "-q", "-xq", "a.img"),
                args("create", "-f", "raw", "-xq", "a.img"),
                args("create", "a.img", "b.img", "-xq"),
                args("create", "-qx", "a.img"),
                args("create", "--foo=bar", "a.img"),
                args("create", "--help=x"),
                args("create", "--obj"),
                args("create", "--object"),
                args("create", "-f"),
                args("create", "-o"),
                args("create", "--output=json", "a.img", "1M"),
                args("create", "-e", "a.img", "1M"),
                args("create", "-6", "a.img", "1M"),
                args("info", "-q", "a.img"),
                args("info", "--f", "raw", "a.img"),
                args("info", "--for", "a.img"),
                args("info", "--o=json", "a.img"),
                args("info", "--image-opts=x", "a.img"),
                args("info", "--output"),
                args("info", "-f"),
                args("info", "--backing-chain=1", "a.img"));
    }

    @ParameterizedTest
    @MethodSource
    void commandLinesThatFailOrDoNothing(List<String> args) {
        assertSameAsQemu(args);
    }

    /** The help body is qemu-img's; the version lines, the format list and the last lines say it is jblock. */
    @ParameterizedTest
    @MethodSource
    void helpIsQemuImgsExceptWhereItNamesJblock(List<String> args) {
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args);
        assertThat(actual.status()).isEqualTo(expected.status()).isZero();
        assertThat(actual.err()).isEqualTo(expected.err()).isEmpty();
        // Lines: version (2), body..., "Supported formats:", "", two closing lines, and the final newline.
        assertThat(maskLines(actual.out(), 0, 1, -5, -3, -2))
                .isEqualTo(maskLines(expected.out(), 0, 1, -5, -3, -2));
        assertThat(actual.out()).startsWith("qemu-img version 7.2.22 (jblock ")
                .contains("\nSupported formats: blkdebug blklogwrites file host_device memory qcow2 raw\n");
    }

    static Stream<List<String>> helpIsQemuImgsExceptWhereItNamesJblock() {
        return Stream.of(args("-h"), args("--help"), args("--he"), args("-h", "create"), args("create", "-h"),
                args("create", "--help"), args("info", "-h"), args("info", "--help", "a.img"), args("-hV"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"-V", "--version", "--vers", "-Vh"})
    void versionNamesTheQemuImgReleaseItFollows(String option) {
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args(option));
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args(option, "create"));
        assertThat(expected.out()).startsWith("qemu-img version 7.2.22 ");
        assertThat(actual.status()).isEqualTo(expected.status()).isZero();
        assertThat(actual.out()).startsWith("qemu-img version 7.2.22 (jblock ").endsWith("it is not QEMU\n");
        assertThat(actual.out().lines()).hasSameSizeAs(expected.out().lines().toList());
    }

    @Test
    void everyCommandIsWrittenNoneSaysNotAvailable() {
        for (String command : ImgTool.commandNames()) {
            QemuImgOracle.Run run = QemuImgOracle.jblock(args(command, "x.img"));
            assertThat(run.err()).as(command).doesNotContain("not available yet");
            assertThat(run.status()).as(command).isNotZero();
        }
    }

    @Test
    void everyQemuImgCommandIsKnown() {
        // ... and replay, jblock's own (power-cut replay of a write log).
        assertThat(ImgTool.commandNames()).containsExactlyInAnyOrder("amend", "bench", "bitmap", "check", "commit",
                "compare", "convert", "create", "dd", "info", "map", "measure", "snapshot", "rebase", "resize",
                "replay");
    }

    @Test
    void tracingIsAcceptedAndIgnoredWithAWarning() {
        QemuImgOracle.Run run = QemuImgOracle.jblock(args("-T", "foo"));
        assertThat(run.status()).isZero();
        assertThat(run.err()).isEqualTo("qemu-img: warning: tracing is not available in jblock; '-T foo' ignored\n");
    }

    @Test
    void startedAsJblockImgItNamesItselfSo() {
        var out = new java.io.ByteArrayOutputStream();
        var err = new java.io.ByteArrayOutputStream();
        int status = io.jblock.cli.Main.run("jblock", new String[] {"img", "frobnicate"},
                java.io.InputStream.nullInputStream(), new java.io.PrintStream(out, true),
                new java.io.PrintStream(err, true));
        assertThat(status).isEqualTo(1);
        assertThat(err.toString()).isEqualTo(
                "jblock img: Command not found: frobnicate\nTry 'jblock img --help' for more information\n");
    }
}
