package io.jblock.cli.io;

import java.math.BigInteger;
import java.util.function.Consumer;

/**
 * The number parsers qemu-io uses for its arguments, to the last corner case,
 * since scripts rely on what they accept: {@code cvtnum} (QEMU's
 * qemu_strtosz: sizes with k/M/G/T/P/E suffixes, fractions like
 * {@code 1.5k}, hex) and C's {@code strtol} with base 0 (pattern bytes and
 * sleep times: decimal, 0x hex, 0 octal).
 */
final class QemuNumbers {
    /** Why a size did not parse; qemu-io prints a different message for each. */
    enum SizeError { INVALID, TOO_LARGE }

    static final class SizeException extends Exception {
        final SizeError kind;

        SizeException(SizeError kind) {
            super(null, null, false, false);
            this.kind = kind;
        }
    }

    private QemuNumbers() {
    }

    /**
     * qemu-io's cvtnum: a size in bytes, no larger than INT64_MAX.
     *
     * @param warn receives QEMU's deprecation warning for a suffix on a hex number
     */
    static long cvtnum(String s, Consumer<String> warn) throws SizeException {
        long v = strtosz(s, warn);
        if (v < 0) {
            // Above INT64_MAX as an unsigned number.
            throw new SizeException(SizeError.TOO_LARGE);
        }
        return v;
    }

    /**
     * QEMU's qemu_strtosz: an unsigned 64-bit result (returned in a long's
     * bits). The integer part is decimal unless it is {@code 0x...}; a
     * fraction needs a suffix; the fraction is kept as 64.64 fixed point and
     * the product rounded half up, as QEMU computes it.
     */
    static long strtosz(String s, Consumer<String> warn) throws SizeException {
        Parsed integral = strtoull(s, 10);
        if (integral.end() == 0) {
            throw new SizeException(SizeError.INVALID);
        }
        if (integral.overflow()) {
            throw new SizeException(SizeError.TOO_LARGE);
        }
        if (s.substring(0, integral.end()).indexOf('-') >= 0) {
            throw new SizeException(SizeError.INVALID);
        }
        long val = integral.value();
        int end = integral.end();
        long valf = 0;
        boolean hex = false;
        if (val == 0 && end < s.length() && (s.charAt(end) == 'x' || s.charAt(end) == 'X')) {
            Parsed h = strtoull(s, 16);
            if (h.overflow()) {
                throw new SizeException(SizeError.TOO_LARGE);
            }
            val = h.value();
            end = h.end();
            if (end < s.length() && s.charAt(end) == '.') {
                throw new SizeException(SizeError.INVALID);
            }
            hex = true;
        } else if (end < s.length() && s.charAt(end) == '.') {
            int f = end;
            int p = f + 1;
            while (p < s.length() && isDigit(s.charAt(p))) {
                p++;
            }
            if (p == f + 1) {
                // strtod finds no number in a bare '.': QEMU skips the dot, so "1.k" is 1k.
                end = f + 1;
            } else {
                int q = exponentEnd(s, p);
                if (q != p) {
                    // An exponent makes the whole input invalid.
                    throw new SizeException(SizeError.INVALID);
                }
                double fraction = Double.parseDouble("0" + s.substring(f, p));
                end = p;
                // QEMU converts fraction * 2^64 to uint64_t; a fraction that rounded to 1.0
                // overflows that conversion, which on x86-64 yields 0.
                valf = fraction >= 1.0 ? 0 : toUnsigned(fraction * 0x1p64);
            }
        }
        long mul = end < s.length() ? suffixMul(s.charAt(end)) : -1;
        if (mul > 0) {
            if (hex) {
                warn.accept("Using a multiplier suffix on hex numbers is deprecated: " + s);
            }
            end++;
        } else {
            mul = 1;
        }
        if (mul == 1) {
            if (valf != 0) {
                throw new SizeException(SizeError.INVALID);
            }
        } else {
            BigInteger m = BigInteger.valueOf(mul);
            BigInteger whole = unsigned(val).multiply(m);
            BigInteger frac = unsigned(valf).multiply(m);
            BigInteger total = whole.add(frac.shiftRight(64));
            // Round half up: the highest bit of the fraction left over.
            if (frac.testBit(63)) {
                total = total.add(BigInteger.ONE);
            }
            if (total.bitLength() > 64) {
                throw new SizeException(SizeError.TOO_LARGE);
            }
            val = total.longValue();
        }
        if (end != s.length()) {
            throw new SizeException(SizeError.INVALID);
        }
        return val;
    }

    /**
     * C's {@code strtol(s, &end, 0)} as qemu-io uses it for pattern bytes and
     * sleep times: the value, clamped to the long range as strtol does, or
     * null when anything is left after the number.
     */
    static Long strtol0(String s) {
        Parsed p = strtoull(s, 0);
        if (p.end != s.length()) {
            return null;
        }
        BigInteger v = p.negative ? p.magnitude.negate() : p.magnitude;
        if (v.bitLength() > 63) {
            return v.signum() < 0 ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
        return v.longValue();
    }

    /** What glibc's strtoul-family scanner found: the digits' magnitude, the sign, and where it stopped (0: nothing). */
    private record Parsed(BigInteger magnitude, int end, boolean negative) {
        boolean overflow() {
            return magnitude.bitLength() > 64;
        }

        /** strtoull's result: a minus sign negates modulo 2^64. */
        long value() {
            long v = magnitude.longValue();
            return negative ? -v : v;
        }
    }

    /**
     * glibc's strtoull/strtol scanner: spaces, a sign, then digits in
     * {@code base} (0 picks 0x hex, 0 octal or decimal).
     */
    private static Parsed strtoull(String s, int base) {
        int i = 0;
        while (i < s.length() && isSpace(s.charAt(i))) {
            i++;
        }
        boolean negative = false;
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            negative = s.charAt(i) == '-';
            i++;
        }
        if ((base == 0 || base == 16) && i + 2 < s.length() && s.charAt(i) == '0'
                && (s.charAt(i + 1) == 'x' || s.charAt(i + 1) == 'X')
                && hexDigit(s.charAt(i + 2)) >= 0) {
            i += 2;
            base = 16;
        } else if (base == 0) {
            base = i < s.length() && s.charAt(i) == '0' ? 8 : 10;
        }
        int start = i;
        BigInteger v = BigInteger.ZERO;
        BigInteger b = BigInteger.valueOf(base);
        while (i < s.length()) {
            int d = hexDigit(s.charAt(i));
            if (d < 0 || d >= base) {
                break;
            }
            v = v.multiply(b).add(BigInteger.valueOf(d));
            i++;
        }
        if (i == start) {
            return new Parsed(BigInteger.ZERO, 0, false);
        }
        return new Parsed(v, i, negative);
    }

    private static int hexDigit(char c) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    }

    private static int exponentEnd(String s, int p) {
        if (p < s.length() && (s.charAt(p) == 'e' || s.charAt(p) == 'E')) {
            int q = p + 1;
            if (q < s.length() && (s.charAt(q) == '+' || s.charAt(q) == '-')) {
                q++;
            }
            int digits = q;
            while (q < s.length() && isDigit(s.charAt(q))) {
                q++;
            }
            if (q > digits) {
                return q;
            }
        }
        return p;
    }

    private static long suffixMul(char c) {
        return switch (Character.toUpperCase(c)) {
            case 'B' -> 1;
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            case 'T' -> 1L << 40;
            case 'P' -> 1L << 50;
            case 'E' -> 1L << 60;
            default -> -1;
        };
    }

    private static BigInteger unsigned(long v) {
        BigInteger b = BigInteger.valueOf(v);
        return v >= 0 ? b : b.add(BigInteger.ONE.shiftLeft(64));
    }

    private static long toUnsigned(double d) {
        if (d >= 0x1p63) {
            return (long) (d - 0x1p63) ^ Long.MIN_VALUE;
        }
        return (long) d;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    /** C's isspace in the C locale. */
    private static boolean isSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\u000b' || c == '\f' || c == '\r';
    }
}
