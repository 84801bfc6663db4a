package io.jblock.cli.img;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class QemuSizeTest {
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "0|0", "1|1", "1b|1", "1B|1", "1k|1024", "1K|1024", "1m|1048576", "1M|1048576", "1g|1073741824",
            "1t|1099511627776", "1p|1125899906842624", "1e|1152921504606846976", "1E|1152921504606846976",
            "1.5k|1536", "1.0|1", "1.|1", "1.k|1024", "1.0000001k|1024", "0.5G|536870912", "010|10",
            "0x10|16", "0X10|16", "0x1b|27", "'  7'|7", "+1|1", "15E|-1152921504606846976",
            "0.00000000000000000001k|0", "1.99999999999999999999k|1024", "18446744073709551615|-1",
            "15.99999999999999999E|-1152921504606846976", "15.9999999999999999E|-128",
            "1.5e400k|1", "1.5e-400k|1"})
    void acceptsWhatQemuAccepts(String text, long expected) {
        QemuSize.Result r = QemuSize.parse(text, w -> { });
        assertThat(r.failure()).as(text).isNull();
        assertThat(r.value()).as(text).isEqualTo(expected);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "0.5", "1.5", "1.5b", "1x", "1kk", "abc", "1e3", "1.5e3", "1 ", ".5k", "00x10",
            "0x", "0x1.5k", "-1", "-0", "- 1", "k", "1k5", "99999999999999999999x"})
    void refusesWhatQemuRefuses(String text) {
        assertThat(QemuSize.parse(text, w -> { }).failure()).as(text).isEqualTo(QemuSize.Failure.INVALID);
    }

    @ParameterizedTest
    @ValueSource(strings = {"16E", "18446744073709551616", "99999999999999999999", "16384P"})
    void tooLargeForSixtyFourBitsIsOutOfRange(String text) {
        assertThat(QemuSize.parse(text, w -> { }).failure()).as(text).isEqualTo(QemuSize.Failure.OUT_OF_RANGE);
    }

    @Test
    void aSuffixOnAHexNumberIsDeprecatedButHonoured() {
        List<String> warnings = new ArrayList<>();
        QemuSize.Result r = QemuSize.parse("0x2k", warnings::add);
        assertThat(r.value()).isEqualTo(2048);
        assertThat(warnings).containsExactly("Using a multiplier suffix on hex numbers is deprecated: 0x2k");
        warnings.clear();
        QemuSize.parse("0x1b", warnings::add);
        assertThat(warnings).as("b is a hex digit there, not a suffix").isEmpty();
    }
}
