package io.jblock.cli.img;

import java.math.BigInteger;
import java.util.function.Consumer;

/**
 * QEMU's size syntax ({@code qemu_strtosz}), as qemu-img 7.2 accepts it on
 * the command line and in {@code -o size=}: a decimal integer, optionally
 * with a fraction, then an optional binary suffix (b, k, M, G, T, P, E, any
 * case); or a hexadecimal integer ({@code 0x10}), where a suffix still works
 * but draws a deprecation warning. The value must fit in 64 unsigned bits.
 *
 * <p>The rules that surprise: leading blanks and a {@code +} are accepted, a
 * {@code -} anywhere in the number is not; a fraction needs a suffix other
 * than {@code b} ({@code 1.5} is an error, {@code 1.0} and {@code 1.} are 1);
 * an exponent is refused ({@code 1e3}); the fraction is rounded half up after
 * scaling ({@code 1.0000001k} is 1024).
 */
final class QemuSize {
    /** Why a size did not parse: the two failures QEMU tells apart. */
    enum Failure { INVALID, OUT_OF_RANGE }

    /** A parsed size (as unsigned 64 bits) or a failure. */
    record Result(long value, Failure failure) {
        boolean ok() {
            return failure == null;
        }
    }

    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);
    private static final BigInteger HALF = BigInteger.ONE.shiftLeft(63);

    private QemuSize() {
    }

    /**
     * Parses {@code text} whole; {@code warnings} receives QEMU's deprecation
     * warning for a suffix on a hex number (without the "prog: warning: " prefix).
     */
    static Result parse(String text, Consumer<String> warnings) {
        int n = text.length();
        // The integral part, as strtoull(base 10) reads it: blanks, a sign, digits.
        Integral integral = strtoull(text, 0, 10);
        if (integral.failure != null) {
            return finish(text, integral.end, integral.failure, 0);
        }
        if (text.substring(0, integral.end).indexOf('-') >= 0) {
            return new Result(0, Failure.INVALID);
        }
        long val = integral.value;
        int end = integral.end;
        long fraction64 = 0;
        if (val == 0 && end < n && (text.charAt(end) == 'x' || text.charAt(end) == 'X')) {
            // Looks like hex: read again in base 16; no fraction allowed after it.
            Integral hex = strtoull(text, 0, 16);
            if (hex.failure != null) {
                return finish(text, hex.end, hex.failure, 0);
            }
            val = hex.value;
            end = hex.end;
            if (end < n && text.charAt(end) == '.') {
                return new Result(0, Failure.INVALID);
            }
            if (end < n && multiplier(text.charAt(end)) > 0) {
                warnings.accept("Using a multiplier suffix on hex numbers is deprecated: " + text);
            }
        } else if (end < n && text.charAt(end) == '.') {
            int digitsEnd = end + 1;
            while (digitsEnd < n && text.charAt(digitsEnd) >= '0' && text.charAt(digitsEnd) <= '9') {
                digitsEnd++;
            }
            if (hasExponent(text, digitsEnd)) {
                // strtod would read an exponent, and QEMU refuses any ("1.5e3"); a bare 'e' is the suffix.
                return new Result(0, Failure.INVALID);
            }
            if (digitsEnd > end + 1) {
                fraction64 = toFixed64(Double.parseDouble("0" + text.substring(end, digitsEnd)));
            }
            // Without digits after the point ("1.", "1.k") the point is skipped and the number is whole.
            end = digitsEnd;
        }
        long mul = end < n ? multiplier(text.charAt(end)) : 0;
        if (mul > 0) {
            end++;
        } else {
            mul = 1;
        }
        if (mul == 1) {
            if (fraction64 != 0) {
                return new Result(0, Failure.INVALID);
            }
            return finish(text, end, null, val);
        }
        // Exact 64.64 fixed point times the multiplier, then rounded half up.
        BigInteger scaled = toUnsigned(val).multiply(BigInteger.valueOf(mul)).shiftLeft(64)
                .add(toUnsigned(fraction64).multiply(BigInteger.valueOf(mul)))
                .add(HALF).shiftRight(64);
        if (scaled.compareTo(TWO_64) >= 0) {
            return finish(text, end, Failure.OUT_OF_RANGE, 0);
        }
        return finish(text, end, null, scaled.longValue());
    }

    /** Trailing characters turn any result, even an overflow, into INVALID, as QEMU's check comes last. */
    private static Result finish(String text, int end, Failure failure, long value) {
        if (end < text.length()) {
            return new Result(0, Failure.INVALID);
        }
        return failure != null ? new Result(0, failure) : new Result(value, null);
    }

    /** 1 for b/B, the power of 1024 for k/K, M/m, G/g, T/t, P/p, E/e, 0 for anything else. */
    static long multiplier(char c) {
        return switch (c) {
            case 'b', 'B' -> 1L;
            case 'k', 'K' -> 1L << 10;
            case 'm', 'M' -> 1L << 20;
            case 'g', 'G' -> 1L << 30;
            case 't', 'T' -> 1L << 40;
            case 'p', 'P' -> 1L << 50;
            case 'e', 'E' -> 1L << 60;
            default -> 0;
        };
    }

    /** Whether an exponent ("e5", "E-3") starts at {@code i}, as strtod would read it. */
    private static boolean hasExponent(String text, int i) {
        int n = text.length();
        if (i >= n || (text.charAt(i) != 'e' && text.charAt(i) != 'E')) {
            return false;
        }
        int j = i + 1;
        if (j < n && (text.charAt(j) == '+' || text.charAt(j) == '-')) {
            j++;
        }
        return j < n && text.charAt(j) >= '0' && text.charAt(j) <= '9';
    }

    /**
     * The fraction as a 64-bit binary fixed point, as C's (uint64_t)(f * 2^64).
     * A fraction that rounded up to 1.0 converts to 0 on x86-64, as qemu-img
     * shows ("1.99999999999999999999k" is 1024).
     */
    private static long toFixed64(double fraction) {
        double scaled = fraction * 0x1p64;
        if (scaled >= 0x1p64) {
            return 0;
        }
        return new java.math.BigDecimal(scaled).toBigInteger().longValue();
    }

    private static BigInteger toUnsigned(long v) {
        BigInteger b = BigInteger.valueOf(v);
        return v >= 0 ? b : b.add(TWO_64);
    }

    private record Integral(long value, int end, Failure failure) {
    }

    /** C's strtoull: blanks, an optional sign, an optional 0x in base 16, digits; overflow is ERANGE. */
    private static Integral strtoull(String s, int start, int base) {
        int i = start;
        int n = s.length();
        while (i < n && isCSpace(s.charAt(i))) {
            i++;
        }
        boolean negative = false;
        if (i < n && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            negative = s.charAt(i) == '-';
            i++;
        }
        // "0x" is a prefix only when a hex digit follows; otherwise the number is the "0".
        if (base == 16 && i + 2 < n && s.charAt(i) == '0' && (s.charAt(i + 1) == 'x' || s.charAt(i + 1) == 'X')
                && s.charAt(i + 2) < 128 && Character.digit(s.charAt(i + 2), 16) >= 0) {
            i += 2;
        }
        int digitsStart = i;
        BigInteger v = BigInteger.ZERO;
        BigInteger b = BigInteger.valueOf(base);
        while (i < n && s.charAt(i) < 128 && Character.digit(s.charAt(i), base) >= 0) {
            v = v.multiply(b).add(BigInteger.valueOf(Character.digit(s.charAt(i), base)));
            i++;
        }
        if (i == digitsStart) {
            return new Integral(0, start, Failure.INVALID);
        }
        if (v.compareTo(TWO_64) >= 0) {
            return new Integral(0, i, Failure.OUT_OF_RANGE);
        }
        long value = v.longValue();
        return new Integral(negative ? -value : value, i, null);
    }

    private static boolean isCSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\u000b' || c == '\f' || c == '\r';
    }
}
