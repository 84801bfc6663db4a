package io.jblock.block;

import java.math.BigInteger;
import java.util.function.Consumer;

/**
 * QEMU 7.2's size syntax, the {@code qemu_strtosz} family of util/cutils.c,
 * on which qemu-img, qemu-io and every size option of a node rest. Each tool
 * wraps it with its own error messages and limits; the syntax, and every one
 * of its corner cases, lives here once.
 *
 * <p>The syntax: C blanks and a {@code +} may lead; a decimal integer, or a
 * hexadecimal one ({@code 0x10}); for a decimal, an optional fraction; then an
 * optional suffix b, k, M, G, T, P or E (either case; powers of 1024, or of
 * 1000 for {@link #parseMetric}). The result is an unsigned 64-bit number.
 * The rules that surprise, all as the real tools behave:
 * <ul>
 *   <li>a {@code -} anywhere in the integer is invalid ({@code -0}), unless the
 *       integer overflows first: {@code -99999999999999999999} is out of range;</li>
 *   <li>a fraction needs a suffix other than b ({@code 1.5} is invalid;
 *       {@code 1.0} and {@code 1.} are 1, {@code 1.k} is 1024), and the scaled
 *       fraction is rounded half up ({@code 1.0005k} is 1025);</li>
 *   <li>an exponent is refused ({@code 1e3}, {@code 1.5e3k}), but a bare
 *       {@code e} is the exabyte suffix ({@code 1e});</li>
 *   <li>a fraction is kept as 64-bit binary fixed point: one that rounds to 1.0
 *       as a double counts as 0 ({@code 1.99999999999999999999k} is 1024), as
 *       x86-64 converts 2^64 to 0;</li>
 *   <li>a fraction C's strtod reports out of range (too small for a normal
 *       double, such as {@code 1.} and 400 zeros and {@code 1}, or an exponent
 *       past the double range, {@code 1.5e400k}) is dropped, and the character
 *       after it skipped unread: {@code 1.5e400k} is 1;</li>
 *   <li>a suffix on a hex number works but draws a deprecation warning;
 *       a fraction on one is invalid ({@code 0x1.5k});</li>
 *   <li>anything left over makes the text invalid, even when the number
 *       before it was out of range ({@code 16Ex}, {@code 99999999999999999999x}).</li>
 * </ul>
 */
public final class QemuSizes {
    /** Why a size did not parse: the two failures QEMU tells apart (EINVAL and ERANGE). */
    public enum Failure { INVALID, OUT_OF_RANGE }

    /**
     * A parsed size, or why not.
     *
     * @param value the size as unsigned 64 bits (above 2^63 - 1 it reads negative); 0 on failure
     * @param failure null when the text parsed
     */
    public record Result(long value, Failure failure) {
        public boolean ok() {
            return failure == null;
        }

        /** Whether the size parsed and is at most {@link Long#MAX_VALUE}, the most a tool takes as a signed size. */
        public boolean fitsInLong() {
            return failure == null && value >= 0;
        }
    }

    /**
     * What C's strtoull scanner found: the digits' value (unbounded), whether a
     * minus sign came first, and the index after the last digit (0 when there
     * were no digits).
     */
    public record CInteger(BigInteger magnitude, boolean negative, int end) {
        /** Whether strtoull would report ERANGE. */
        public boolean overflows() {
            return magnitude.bitLength() > 64;
        }
    }

    /** The warning QEMU prints (after "prog: warning: ") for a suffix on a hex number. */
    public static final String HEX_SUFFIX_WARNING = "Using a multiplier suffix on hex numbers is deprecated: ";

    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);
    private static final Result INVALID = new Result(0, Failure.INVALID);

    private QemuSizes() {
    }

    /**
     * qemu_strtosz: the whole text as a size in bytes, no suffix meaning bytes.
     *
     * @param warnings receives the deprecation warning for a suffix on a hex number
     */
    public static Result parse(String text, Consumer<String> warnings) {
        return parse(text, 'B', 1024, warnings);
    }

    /** qemu_strtosz_MiB: as {@link #parse}, but a number without a suffix counts mebibytes. */
    public static Result parseMiB(String text, Consumer<String> warnings) {
        return parse(text, 'M', 1024, warnings);
    }

    /** qemu_strtosz_metric: as {@link #parse}, but the suffixes are powers of 1000. */
    public static Result parseMetric(String text, Consumer<String> warnings) {
        return parse(text, 'B', 1000, warnings);
    }

    /** QEMU's do_strtosz, whole text: the steps in its order, since the order decides which failure wins. */
    private static Result parse(String s, char defaultSuffix, long unit, Consumer<String> warnings) {
        int n = s.length();
        CInteger integral = strtoull(s, 10);
        if (integral.end() == 0) {
            return INVALID;
        }
        if (integral.overflows()) {
            return finish(s, integral.end(), Failure.OUT_OF_RANGE, 0);
        }
        if (s.substring(0, integral.end()).indexOf('-') >= 0) {
            return INVALID;
        }
        long val = integral.magnitude().longValue();
        int end = integral.end();
        long fraction = 0;
        boolean hex = false;
        if (val == 0 && end < n && (s.charAt(end) == 'x' || s.charAt(end) == 'X')) {
            // It looks like hex: read it again in base 16, which also takes the 0x.
            CInteger h = strtoull(s, 16);
            if (h.overflows()) {
                return finish(s, h.end(), Failure.OUT_OF_RANGE, 0);
            }
            val = h.magnitude().longValue();
            end = h.end();
            if (end < n && s.charAt(end) == '.') {
                return INVALID;
            }
            hex = true;
        } else if (end < n && s.charAt(end) == '.') {
            DecimalFraction f = strtod(s, end);
            if (f == null) {
                // strtod finds no number in a bare '.': the point is skipped, "1.k" is 1k.
                end++;
            } else if (f.outOfRange()) {
                // QEMU drops the fraction and skips one character more, whatever it is.
                end = f.end() + 1;
            } else if (f.hasExponent()) {
                return INVALID;
            } else {
                fraction = toFixed64(f.value());
                end = f.end();
            }
        }
        if (end > n) {
            // QEMU reads past the end of the text here (undefined); qemu-io finds the terminator
            // again and takes the number, and so does jblock.
            end = n;
        }
        long mul = end < n ? suffixMultiplier(s.charAt(end), unit) : 0;
        if (mul > 0) {
            if (hex) {
                warnings.accept(HEX_SUFFIX_WARNING + s);
            }
            end++;
        } else {
            mul = suffixMultiplier(defaultSuffix, unit);
        }
        if (mul == 1) {
            if (fraction != 0) {
                return INVALID;
            }
            return finish(s, end, null, val);
        }
        // 64.64 fixed point times the multiplier, exactly, then rounded half up.
        BigInteger m = BigInteger.valueOf(mul);
        BigInteger scaledFraction = unsigned(fraction).multiply(m);
        BigInteger total = unsigned(val).multiply(m).add(scaledFraction.shiftRight(64));
        if (scaledFraction.testBit(63)) {
            total = total.add(BigInteger.ONE);
        }
        if (total.compareTo(TWO_64) >= 0) {
            return finish(s, end, Failure.OUT_OF_RANGE, 0);
        }
        return finish(s, end, null, total.longValue());
    }

    /** Text left after the number turns any result, even an overflow, into INVALID: QEMU checks it last. */
    private static Result finish(String s, int end, Failure failure, long value) {
        if (end < s.length()) {
            return INVALID;
        }
        return failure != null ? new Result(0, failure) : new Result(value, null);
    }

    /** 1 for b/B, the power of {@code unit} for k/K, m/M, g/G, t/T, p/P, e/E; 0 for anything else. */
    private static long suffixMultiplier(char c, long unit) {
        int power = switch (c) {
            case 'b', 'B' -> 0;
            case 'k', 'K' -> 1;
            case 'm', 'M' -> 2;
            case 'g', 'G' -> 3;
            case 't', 'T' -> 4;
            case 'p', 'P' -> 5;
            case 'e', 'E' -> 6;
            default -> -1;
        };
        if (power < 0) {
            return 0;
        }
        long m = 1;
        for (int i = 0; i < power; i++) {
            m *= unit;
        }
        return m;
    }

    /**
     * C's strtoull (glibc, C locale) scanning {@code s} from its start: blanks,
     * a sign, then digits in {@code base}, where 16 takes an optional 0x and 0
     * picks 0x hex, 0 octal or decimal. "0x" is a prefix only when a hex digit
     * follows; otherwise the number is the "0".
     */
    public static CInteger strtoull(String s, int base) {
        int n = s.length();
        int i = 0;
        while (i < n && isCSpace(s.charAt(i))) {
            i++;
        }
        boolean negative = false;
        if (i < n && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            negative = s.charAt(i) == '-';
            i++;
        }
        if ((base == 0 || base == 16) && i + 2 < n && s.charAt(i) == '0'
                && (s.charAt(i + 1) == 'x' || s.charAt(i + 1) == 'X') && asciiDigit(s.charAt(i + 2), 16) >= 0) {
            i += 2;
            base = 16;
        } else if (base == 0) {
            base = i < n && s.charAt(i) == '0' ? 8 : 10;
        }
        int digitsStart = i;
        BigInteger v = BigInteger.ZERO;
        BigInteger b = BigInteger.valueOf(base);
        while (i < n && asciiDigit(s.charAt(i), base) >= 0) {
            v = v.multiply(b).add(BigInteger.valueOf(asciiDigit(s.charAt(i), base)));
            i++;
        }
        if (i == digitsStart) {
            return new CInteger(BigInteger.ZERO, false, 0);
        }
        return new CInteger(v, negative, i);
    }

    /**
     * What C's strtod reads from a '.' on: digits and an optional exponent.
     *
     * @param outOfRange whether strtod sets ERANGE: the value overflows, or is nonzero yet below the normal range
     */
    private record DecimalFraction(double value, int end, boolean hasExponent, boolean outOfRange) {
    }

    /** strtod at the '.' at {@code dot}, or null when no digit follows it. */
    private static DecimalFraction strtod(String s, int dot) {
        int n = s.length();
        int i = dot + 1;
        boolean nonzero = false;
        while (i < n && asciiDigit(s.charAt(i), 10) >= 0) {
            nonzero |= s.charAt(i) != '0';
            i++;
        }
        if (i == dot + 1) {
            return null;
        }
        int exponentEnd = exponentEnd(s, i);
        double value = Double.parseDouble("0" + s.substring(dot, exponentEnd));
        boolean outOfRange = Double.isInfinite(value) || (nonzero && value < Double.MIN_NORMAL);
        return new DecimalFraction(value, exponentEnd, exponentEnd > i, outOfRange);
    }

    /** Where an exponent ("e5", "E-3") starting at {@code i} ends, as strtod reads it; {@code i} when there is none. */
    private static int exponentEnd(String s, int i) {
        int n = s.length();
        if (i >= n || (s.charAt(i) != 'e' && s.charAt(i) != 'E')) {
            return i;
        }
        int j = i + 1;
        if (j < n && (s.charAt(j) == '+' || s.charAt(j) == '-')) {
            j++;
        }
        int digits = j;
        while (j < n && asciiDigit(s.charAt(j), 10) >= 0) {
            j++;
        }
        return j > digits ? j : i;
    }

    /**
     * A fraction in [0, 1) as 64-bit binary fixed point, as C's
     * {@code (uint64_t)(f * 0x1p64)}; a fraction that rounded to 1.0 converts
     * to 0, as on x86-64.
     */
    private static long toFixed64(double fraction) {
        double scaled = fraction * 0x1p64;
        if (scaled >= 0x1p64) {
            return 0;
        }
        if (scaled >= 0x1p63) {
            return (long) (scaled - 0x1p63) ^ Long.MIN_VALUE;
        }
        return (long) scaled;
    }

    private static BigInteger unsigned(long v) {
        BigInteger b = BigInteger.valueOf(v);
        return v >= 0 ? b : b.add(TWO_64);
    }

    /** The digit's value in {@code base}, or -1; ASCII only, as in the C locale. */
    private static int asciiDigit(char c, int base) {
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'z') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'Z') {
            d = c - 'A' + 10;
        } else {
            return -1;
        }
        return d < base ? d : -1;
    }

    /** C's isspace in the C locale. */
    private static boolean isCSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\u000b' || c == '\f' || c == '\r';
    }
}
