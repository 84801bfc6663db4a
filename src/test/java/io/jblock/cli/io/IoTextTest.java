package io.jblock.cli.io;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/** qemu-io's own text formats, to the character. */
class IoTextTest {
    @Test
    void cvtstrCutsTheFirstTripleZeroAndWhatFollows() {
        assertThat(IoText.cvtstr(0)).isEqualTo("0 bytes");
        assertThat(IoText.cvtstr(1)).isEqualTo("1 bytes");
        assertThat(IoText.cvtstr(512)).isEqualTo("512 bytes");
        assertThat(IoText.cvtstr(1000)).isEqualTo("1000 bytes");
        assertThat(IoText.cvtstr(1024)).isEqualTo("1 KiB");
        assertThat(IoText.cvtstr(1536)).isEqualTo("1.500 KiB");
        assertThat(IoText.cvtstr(1 << 20)).isEqualTo("1 MiB");
        assertThat(IoText.cvtstr(1.122632)).isEqualTo("1.122632 bytes");
        assertThat(IoText.cvtstr(0.5)).isEqualTo("0.500000 bytes");
        assertThat(IoText.cvtstr(Long.MAX_VALUE)).isEqualTo("8 EiB");
        assertThat(IoText.cvtstr(1.5 * (1L << 60))).isEqualTo("1.500 EiB");
        assertThat(IoText.cvtstr(Double.POSITIVE_INFINITY)).isEqualTo("inf EiB");
    }

    @Test
    void timeIsSecondsUnderASecondAndHoursMinutesSecondsAbove() {
        assertThat(IoText.timestr(0, false)).isEqualTo("00.00 sec");
        assertThat(IoText.timestr(123_000_000L, false)).isEqualTo("00.12 sec");
        assertThat(IoText.timestr(456_123_000_000L, false)).isEqualTo("0:07:36.12");
        assertThat(IoText.timestr(3_723_500_000_000L, false)).isEqualTo("1:02:03.50");
        assertThat(IoText.timestr(10_000_000L, true)).isEqualTo("0:00:00.01");
    }

    @Test
    void reportHasTheOffsetLineThenTheStatistics() {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        IoText.report(new PrintStream(b, true, StandardCharsets.UTF_8), "wrote", 1_000_000_000L, 0, 4096, 4096, 1,
                false);
        assertThat(b.toString(StandardCharsets.UTF_8)).isEqualTo(
                "wrote 4096/4096 bytes at offset 0\n4 KiB, 1 ops; 0:00:01.00 (4 KiB/sec and 1.0000 ops/sec)\n");
    }

    @Test
    void machineReportIsOneCommaSeparatedLine() {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        IoText.report(new PrintStream(b, true, StandardCharsets.UTF_8), "read", 500_000_000L, 0, 512, 512, 1,
                true);
        assertThat(b.toString(StandardCharsets.UTF_8)).isEqualTo("512,1,0:00:00.50,1024.000,2.000\n");
    }

    @Test
    void dumpShowsSixteenBytesALineWithPrintableLettersAndDigits() {
        byte[] data = "AZaz09.-\u00ff".getBytes(StandardCharsets.ISO_8859_1);
        byte[] buf = new byte[20];
        System.arraycopy(data, 0, buf, 0, data.length);
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        IoText.dump(new PrintStream(b, true, StandardCharsets.UTF_8), buf, 0, 0x100000000L, 20);
        assertThat(b.toString(StandardCharsets.UTF_8)).isEqualTo(
                "100000000:  41 5a 61 7a 30 39 2e 2d ff 00 00 00 00 00 00 00  AZaz09..........\n"
                        + "100000010:  00 00 00 00  ....\n");
    }
}
