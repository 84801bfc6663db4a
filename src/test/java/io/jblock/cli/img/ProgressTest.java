package io.jblock.cli.img;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The -p printer's text and steps, and convert's -m number syntax: C's rules, not Java's. */
class ProgressTest {
    @Test
    void figuresPrintAsCDoesWithTiesToEven() {
        assertThat(Progress.twoDecimals(0f)).isEqualTo("0.00");
        assertThat(Progress.twoDecimals(100f)).isEqualTo("100.00");
        // 0.125 is exact in binary: C rounds the tie to even, Java's %.2f would print 0.13.
        assertThat(Progress.twoDecimals(0.125f)).isEqualTo("0.12");
        assertThat(Progress.twoDecimals(0.375f)).isEqualTo("0.38");
        assertThat(Progress.twoDecimals(33.333332f)).isEqualTo("33.33");
    }

    @Test
    void printsAtZeroAtHundredAndAfterEachStep() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        Progress p = new Progress(new PrintStream(bytes, true, StandardCharsets.UTF_8), true, 2.0f);
        p.print(0, 100);
        p.print(1.5f, 100);   // 1.5: not more than 2 past the last print
        p.print(1.0f, 100);   // 2.5: printed
        p.print(60, 0);       // set to 60: printed
        p.print(100, 100);    // capped at 100: printed
        p.end();
        assertThat(bytes.toString(StandardCharsets.UTF_8)).isEqualTo(
                "    (0.00/100%)\r    (2.50/100%)\r    (60.00/100%)\r    (100.00/100%)\r\n");
    }

    @Test
    void disabledPrintsNothing() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        Progress p = new Progress(new PrintStream(bytes, true, StandardCharsets.UTF_8), false, 1.0f);
        p.print(0, 100);
        p.print(100, 0);
        p.end();
        assertThat(bytes.size()).isZero();
    }

    @Test
    void coroutineCountsReadAsCStrtolWithBaseZero() {
        assertThat(ConvertCommand.strtol("8")).isEqualTo(8);
        assertThat(ConvertCommand.strtol("0x10")).isEqualTo(16);
        assertThat(ConvertCommand.strtol("010")).isEqualTo(8);
        assertThat(ConvertCommand.strtol(" 3")).isEqualTo(3);
        assertThat(ConvertCommand.strtol("-2")).isEqualTo(-2);
        assertThat(ConvertCommand.strtol("0")).isZero();
        for (String bad : new String[] {"", "x", "3 ", "08", "0x", "--1", "1k"}) {
            assertThatThrownBy(() -> ConvertCommand.strtol(bad)).as(bad).isInstanceOf(NumberFormatException.class);
        }
    }
}
