package io.jblock.cli.img;

import io.jblock.block.QemuSizes;

import java.util.function.Consumer;

/**
 * qemu-img 7.2's sizes, on the command line and in {@code -o size=}: QEMU's
 * qemu_strtosz ({@link QemuSizes}, where the syntax and its corner cases are
 * described), with the full unsigned 64-bit range. The callers add qemu-img's
 * messages and limits: {@link SizeArgument} (cvtnum, at most INT64_MAX) and
 * {@link CreateOptions} (parse_option_size).
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

    private QemuSize() {
    }

    /**
     * Parses {@code text} whole; {@code warnings} receives QEMU's deprecation
     * warning for a suffix on a hex number (without the "prog: warning: " prefix).
     */
    static Result parse(String text, Consumer<String> warnings) {
        QemuSizes.Result r = QemuSizes.parse(text, warnings);
        if (r.ok()) {
            return new Result(r.value(), null);
        }
        return new Result(0, switch (r.failure()) {
            case INVALID -> Failure.INVALID;
            case OUT_OF_RANGE -> Failure.OUT_OF_RANGE;
        });
    }
}
