package io.jblock.cli.io;

import io.jblock.block.QemuSizes;

import java.math.BigInteger;
import java.util.function.Consumer;

/**
 * The number parsers qemu-io uses for its arguments, to the last corner case,
 * since scripts rely on what they accept: {@code cvtnum} (QEMU's
 * qemu_strtosz, shared with the other tools in {@link QemuSizes}, limited to
 * INT64_MAX) and C's {@code strtol} with base 0 (pattern bytes and sleep
 * times: decimal, 0x hex, 0 octal).
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
     * qemu-io's cvtnum: a size in bytes, no larger than INT64_MAX; a size that
     * parses but is larger is TOO_LARGE, like one past 64 bits.
     *
     * @param warn receives QEMU's deprecation warning for a suffix on a hex number
     */
    static long cvtnum(String s, Consumer<String> warn) throws SizeException {
        QemuSizes.Result r = QemuSizes.parse(s, warn);
        if (r.failure() == QemuSizes.Failure.INVALID) {
            throw new SizeException(SizeError.INVALID);
        }
        if (!r.fitsInLong()) {
            throw new SizeException(SizeError.TOO_LARGE);
        }
        return r.value();
    }

    /**
     * C's {@code strtol(s, &end, 0)} as qemu-io uses it for pattern bytes and
     * sleep times: the value, clamped to the long range as strtol does, or
     * null when anything is left after the number.
     */
    static Long strtol0(String s) {
        QemuSizes.CInteger p = QemuSizes.strtoull(s, 0);
        if (p.end() != s.length()) {
            return null;
        }
        BigInteger v = p.negative() ? p.magnitude().negate() : p.magnitude();
        if (v.bitLength() > 63) {
            return v.signum() < 0 ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
        return v.longValue();
    }
}
