package io.jblock.block;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Size options of a node: QEMU's qemu_strtosz behind parse_option_size's two messages, capped at INT64_MAX. */
class NodeOptionsSizeTest {
    @ParameterizedTest(name = "{0} is {1}")
    @CsvSource({"0, 0", "512, 512", "1k, 1024", "1.5k, 1536", "0x200, 512", "0x2k, 2048", "1.5e400k, 1",
        "'  +2M', 2097152", "9223372036854775807, 9223372036854775807", "7.9999999999E, 9223372036739483648"})
    void sizesReadAsQemuReadsThem(String text, long expected) throws BlockException {
        assertThat(NodeOptions.of("size", text).takeUnsigned("size")).contains(expected);
    }

    @ParameterizedTest(name = "''{0}''")
    @ValueSource(strings = {"", "abc", "-1", "-0", "1.5", "1e3", "1kk", "16Ex", "99999999999999999999x", "0x1.5k"})
    void aTextThatIsNoSizeGetsTheHint(String text) {
        assertThatThrownBy(() -> NodeOptions.parseSize("offset", text))
                .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL))
                .hasMessage("Parameter 'offset' expects a non-negative number below 2^64\n"
                        + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                        + "and exabytes, respectively.");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"16E", "99999999999999999999", "-99999999999999999999", "8E", "9223372036854775808",
        "18446744073709551615"})
    void aSizePast64BitsOrPastInt64MaxIsOutOfRange(String text) {
        assertThatThrownBy(() -> NodeOptions.parseSize("size", text))
                .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ERANGE))
                .hasMessage("Value '" + text + "' is out of range for parameter 'size'");
    }

    @Test
    void anAbsentSizeIsEmptyAndATakenOneIsGone() throws BlockException {
        NodeOptions o = NodeOptions.of("size", "1M");
        assertThat(o.takeUnsigned("offset")).isEmpty();
        assertThat(o.takeUnsigned("size")).contains(1048576L);
        assertThat(o.isEmpty()).isTrue();
    }
}
