package io.jblock.cli.img;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** qemu-img's getopt messages name glibc's argv[optind - 1], half permuted; these are the cases that shows in. */
class CommandLineTest {
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private final ImgContext ctx = new ImgContext("qemu-img", InputStream.nullInputStream(),
            new PrintStream(new ByteArrayOutputStream()), new PrintStream(err, true, StandardCharsets.UTF_8));

    private String messageFor(String... argv) {
        CommandLine cl = new CommandLine(ctx, argv, "F:b:f:ho:qu");
        assertThatThrownBy(() -> {
            while (cl.next() != -1) {
                // Options are read until the error.
            }
        }).isInstanceOf(ImgExit.class);
        return err.toString(StandardCharsets.UTF_8).lines().findFirst().orElseThrow();
    }

    @Test
    void aBadOptionAtTheEndOfAClusterNamesTheCluster() {
        assertThat(messageFor("create", "-qx", "a.img")).isEqualTo("qemu-img: unrecognized option '-qx'");
    }

    @Test
    void aBadOptionInsideAClusterNamesTheElementBeforeIt() {
        assertThat(messageFor("create", "-xq", "a.img")).isEqualTo("qemu-img: unrecognized option 'create'");
        err.reset();
        assertThat(messageFor("create", "-f", "raw", "-xq")).isEqualTo("qemu-img: unrecognized option 'raw'");
    }

    @Test
    void operandsSkippedSoFarSitRightBeforeTheClusterInGlibcsArray() {
        assertThat(messageFor("create", "a.img", "b.img", "-q", "-xq")).isEqualTo(
                "qemu-img: unrecognized option 'b.img'");
    }

    @Test
    void aMissingArgumentNamesTheOption() {
        assertThat(messageFor("create", "a.img", "-f")).isEqualTo("qemu-img: missing argument for option '-f'");
    }
}
