package io.jblock.options;

import io.jblock.block.QemuSizes;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every row of {@link QemuSizesTest#table()} given to the real qemu-img as
 * {@code create -f raw -o size=TEXT}, whose parse_option_size passes the text
 * to qemu_strtosz with the whole unsigned range: its output names the value,
 * the failure, and any deprecation warning.
 */
class QemuSizesOracleTest {
    @TempDir
    Path dir;

    /** The table's rows that can travel as a command-line argument: ASCII only, as the JVM may mangle the rest. */
    static Stream<Arguments> asciiRows() {
        return QemuSizesTest.table().filter(a -> ((String) a.get()[0]).chars().allMatch(c -> c < 128));
    }

    @ParameterizedTest(name = "[{index}] ''{0}'' is {1} for qemu-img too")
    @MethodSource("asciiRows")
    void qemuImgReadsTheSizeAsTheTableSays(String text, String expected) {
        QemuTool.Result r = QemuTool.run(dir, "qemu-img", "create", "-f", "raw", "-o", "size=" + text, "x.img");
        String fromQemu;
        if (r.output().contains("Value '" + text + "' is out of range for parameter 'size'")) {
            fromQemu = QemuSizesTest.OUT_OF_RANGE;
        } else if (r.output().contains("Parameter 'size' expects a non-negative number below 2^64")) {
            fromQemu = QemuSizesTest.INVALID;
        } else if (r.output().contains("Image creation needs a size parameter")) {
            // qemu-img takes 2^64 - 1, read as -1, for "no size given": the parse succeeded.
            fromQemu = "18446744073709551615";
        } else {
            // "Formatting 'x.img', fmt=raw size=N" prints the size as a signed number.
            String marker = "fmt=raw size=";
            int at = r.output().indexOf(marker);
            assertThat(at).as("a size or a size error in qemu-img's output for '%s':\n%s", text, r.output()).isNotNegative();
            String signed = r.output().substring(at + marker.length()).lines().findFirst().orElseThrow();
            fromQemu = Long.toUnsignedString(Long.parseLong(signed));
        }
        List<String> warnings = new ArrayList<>();
        QemuSizes.Result ours = QemuSizes.parse(text, warnings::add);
        assertThat(fromQemu).as("qemu-img on '%s'", text).isEqualTo(expected);
        assertThat(QemuSizesTest.outcome(ours)).as("jblock on '%s'", text).isEqualTo(expected);
        boolean qemuWarned = r.output().contains("warning: " + QemuSizes.HEX_SUFFIX_WARNING + text + "\n");
        assertThat(!warnings.isEmpty()).as("whether '%s' draws the hex suffix warning; qemu-img:\n%s", text,
                r.output()).isEqualTo(qemuWarned);
    }
}
