package io.jblock.options;

import io.jblock.block.QemuSizes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * QEMU 7.2's qemu_strtosz, case by case. Every row of {@link #table()} is also
 * checked against the real qemu-img by {@link QemuSizesOracleTest}.
 */
class QemuSizesTest {
    static final String INVALID = "INVALID";
    static final String OUT_OF_RANGE = "OUT_OF_RANGE";

    private static final String ZEROS_400 = "0".repeat(400);
    private static final String ZEROS_307 = "0".repeat(307);

    /** Text, then what qemu_strtosz makes of it: the value as an unsigned decimal, INVALID or OUT_OF_RANGE. */
    static Stream<Arguments> table() {
        return Stream.of(
                // Plain numbers and every suffix, both cases.
                row("0", "0"), row("1", "1"), row("1b", "1"), row("1B", "1"), row("1k", "1024"), row("1K", "1024"),
                row("1m", "1048576"), row("1M", "1048576"), row("1g", "1073741824"), row("1G", "1073741824"),
                row("1t", "1099511627776"), row("1T", "1099511627776"), row("1p", "1125899906842624"),
                row("1P", "1125899906842624"), row("1e", "1152921504606846976"), row("1E", "1152921504606846976"),
                row("7E", "8070450532247928832"), row("010", "10"), row("  7", "7"), row("\t7", "7"), row("+1", "1"),
                // Fractions: only with a suffix other than b, rounded half up after scaling.
                row("1.5k", "1536"), row("0.5G", "536870912"), row("00.5k", "512"), row("1.0", "1"), row("1.", "1"),
                row("1.k", "1024"), row("1.0005k", "1025"), row("1.0004k", "1024"), row("1.0000001k", "1024"),
                row("0.00000000000000000001k", "0"), row("1.5", INVALID), row("0.5", INVALID),
                row("1.5b", INVALID), row(".5k", INVALID), row("1.-5k", INVALID),
                // A fraction that rounds to 1.0 as a double counts as 0 (x86-64 converts 2^64 to 0).
                row("1.99999999999999999999k", "1024"), row("15.99999999999999999E", "17293822569102704640"),
                row("15.9999999999999999E", "18446744073709551488"),
                // Exponents are refused, but a bare e is the exabyte suffix.
                row("1e3", INVALID), row("1.5e3", INVALID), row("1.5e3k", INVALID), row("1.e5", INVALID),
                // A fraction strtod reports out of range is dropped and the next character skipped.
                row("1.5e400k", "1"), row("1.5e-400k", "1"), row("1." + ZEROS_400 + "1k", "1"),
                row("1." + ZEROS_400 + "1x", "1"), row("1." + ZEROS_400 + "1kk", "1024"),
                row("1." + ZEROS_400 + "1kx", INVALID), row("1." + ZEROS_307 + "1k", "1"),
                row("1." + ZEROS_307 + "3k", "1024"), row("1." + ZEROS_307 + "22250738585072014k", "1024"),
                // Hex: a suffix works (with a warning), a fraction does not; b is a digit there.
                row("0x10", "16"), row("0X10", "16"), row("+0x10", "16"), row("0x1b", "27"), row("0x10k", "16384"),
                row("0xffffffffffffffff", "18446744073709551615"), row("0x", INVALID), row("00x10", INVALID),
                row("0x1.5k", INVALID), row("-0x10", INVALID), row("0x-5", INVALID), row("0x10kx", INVALID),
                // Signs, blanks and leftovers.
                row("-1", INVALID), row("-0", INVALID), row("- 1", INVALID), row("", INVALID), row(" ", INVALID),
                row("k", INVALID), row("abc", INVALID), row("1 ", INVALID), row("1x", INVALID), row("1kk", INVALID),
                row("1k5", INVALID), row("1kB", INVALID), row("1KiB", INVALID), row("1Z", INVALID),
                row("\u0661", INVALID), row("1\u0661", INVALID),
                // The 64-bit limit; text after an overflow makes it INVALID instead.
                row("18446744073709551615", "18446744073709551615"), row("15E", "17293822569102704640"),
                row("16E", OUT_OF_RANGE), row("16384P", OUT_OF_RANGE), row("18446744073709551616", OUT_OF_RANGE),
                row("99999999999999999999", OUT_OF_RANGE), row("-99999999999999999999", OUT_OF_RANGE),
                row("0x10000000000000000", OUT_OF_RANGE), row("0xffffffffffffffffE", OUT_OF_RANGE),
                row("0x1000000000000000k", OUT_OF_RANGE),
                row("18446744073709551615.5k", OUT_OF_RANGE), row("99999999999999999999x", INVALID),
                row("16Ex", INVALID), row("0x10000000000000000x", INVALID));
    }

    private static Arguments row(String text, String expected) {
        return Arguments.of(text, expected);
    }

    /** What {@link QemuSizes#parse} returned, spelled as in the table. */
    static String outcome(QemuSizes.Result r) {
        return r.ok() ? Long.toUnsignedString(r.value()) : r.failure().name();
    }

    @ParameterizedTest(name = "[{index}] ''{0}'' is {1}")
    @MethodSource("table")
    void parsesAsQemuStrtosz(String text, String expected) {
        assertThat(outcome(QemuSizes.parse(text, w -> { }))).as("'%s'", text).isEqualTo(expected);
    }

    @Test
    void aSuffixOnAHexNumberWarnsEvenWhenTheSizeThenFails() {
        List<String> warnings = new ArrayList<>();
        assertThat(QemuSizes.parse("0x10k", warnings::add).value()).isEqualTo(16384);
        assertThat(QemuSizes.parse("0x1000000000000000k", warnings::add).failure())
                .isEqualTo(QemuSizes.Failure.OUT_OF_RANGE);
        assertThat(QemuSizes.parse("0x10kx", warnings::add).failure()).isEqualTo(QemuSizes.Failure.INVALID);
        assertThat(warnings).containsExactly(
                "Using a multiplier suffix on hex numbers is deprecated: 0x10k",
                "Using a multiplier suffix on hex numbers is deprecated: 0x1000000000000000k",
                "Using a multiplier suffix on hex numbers is deprecated: 0x10kx");
    }

    @Test
    void aDecimalSuffixOrAHexDigitBDrawsNoWarning() {
        List<String> warnings = new ArrayList<>();
        QemuSizes.parse("16k", warnings::add);
        QemuSizes.parse("0x1b", warnings::add);
        QemuSizes.parse("0x10", warnings::add);
        QemuSizes.parse("0xffffffffffffffffE", warnings::add); // E is a hex digit: 17 of them, out of range
        assertThat(warnings).isEmpty();
    }

    @Test
    void aSkippedCharacterPastTheEndOfTheTextEndsTheNumber() {
        // QEMU reads past the terminator here (undefined behaviour): qemu-io takes the number, jblock too.
        assertThat(outcome(QemuSizes.parse("1.5e400", w -> { }))).isEqualTo("1");
        assertThat(outcome(QemuSizes.parse("1." + ZEROS_400 + "1", w -> { }))).isEqualTo("1");
    }

    @Test
    void fitsInLongOnlyForParsedSizesUpToInt64Max() {
        assertThat(QemuSizes.parse("7E", w -> { }).fitsInLong()).isTrue();
        assertThat(QemuSizes.parse("9223372036854775807", w -> { }).fitsInLong()).isTrue();
        assertThat(QemuSizes.parse("8E", w -> { }).fitsInLong()).isFalse();
        assertThat(QemuSizes.parse("16E", w -> { }).fitsInLong()).isFalse();
        assertThat(QemuSizes.parse("x", w -> { }).fitsInLong()).isFalse();
    }

    @Test
    void theMiBVariantCountsMebibytesWithoutASuffix() {
        assertThat(outcome(QemuSizes.parseMiB("1", w -> { }))).isEqualTo("1048576");
        assertThat(outcome(QemuSizes.parseMiB("1.5", w -> { }))).isEqualTo("1572864");
        assertThat(outcome(QemuSizes.parseMiB("1b", w -> { }))).isEqualTo("1");
        assertThat(outcome(QemuSizes.parseMiB("1.5b", w -> { }))).isEqualTo(INVALID);
        assertThat(outcome(QemuSizes.parseMiB("1k", w -> { }))).isEqualTo("1024");
        assertThat(outcome(QemuSizes.parseMiB("17592186044416", w -> { }))).isEqualTo(OUT_OF_RANGE);
    }

    @Test
    void theMetricVariantCountsPowersOfAThousand() {
        assertThat(outcome(QemuSizes.parseMetric("1", w -> { }))).isEqualTo("1");
        assertThat(outcome(QemuSizes.parseMetric("1k", w -> { }))).isEqualTo("1000");
        assertThat(outcome(QemuSizes.parseMetric("1.5M", w -> { }))).isEqualTo("1500000");
        assertThat(outcome(QemuSizes.parseMetric("18E", w -> { }))).isEqualTo("18000000000000000000");
        assertThat(outcome(QemuSizes.parseMetric("19E", w -> { }))).isEqualTo(OUT_OF_RANGE);
    }

    @Test
    void strtoullReadsAsGlibcInTheCLocale() {
        assertThat(QemuSizes.strtoull(" -12x", 10)).isEqualTo(new QemuSizes.CInteger(
                java.math.BigInteger.valueOf(12), true, 4));
        assertThat(QemuSizes.strtoull("0x1f", 0).magnitude()).isEqualTo(31);
        assertThat(QemuSizes.strtoull("0xg", 16).end()).as("0x without a hex digit is the 0").isEqualTo(1);
        assertThat(QemuSizes.strtoull("077", 0).magnitude()).isEqualTo(63);
        assertThat(QemuSizes.strtoull("\u0661", 10).end()).as("no digits").isZero();
        assertThat(QemuSizes.strtoull("18446744073709551616", 10).overflows()).isTrue();
        assertThat(QemuSizes.strtoull("18446744073709551615", 10).overflows()).isFalse();
    }
}
