package io.jblock.cli.img;

import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** jblock's convert run in this JVM with its files opened through a test's engine. */
final class ConvertRuns {
    private ConvertRuns() {
    }

    /** Runs {@code convert argv} with files opened through {@code engines}; fails unless it exits 0. */
    static void convertWith(GraphOpener.EngineProvider engines, String... argv) {
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), engines));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        ImgContext ctx = new ImgContext("qemu-img", new ByteArrayInputStream(new byte[0]), o, e);
        int status;
        try {
            status = new ConvertCommand(opener).run(ctx, argv);
        } catch (ImgExit x) {
            status = x.status();
        }
        assertThat(status).as("convert %s: %s", List.of(argv), err).isZero();
    }
}
