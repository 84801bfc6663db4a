package io.jblock.cli.img;

/** A size given as a command-line argument (qemu-img's cvtnum): 0 to 2^63-1, with qemu's two messages. */
final class SizeArgument {
    private SizeArgument() {
    }

    /** @param what the name in the message: "image size", "offset" */
    static long parse(ImgContext ctx, String what, String text) throws ImgExit {
        QemuSize.Result r = QemuSize.parse(text, ctx::warn);
        if (r.failure() == QemuSize.Failure.INVALID) {
            ctx.error("Invalid " + what + " specified. You may use k, M, G, T, P or E suffixes for");
            ctx.error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
            throw new ImgExit(1);
        }
        if (r.failure() == QemuSize.Failure.OUT_OF_RANGE || r.value() < 0) {
            throw ctx.fail("Invalid " + what + " specified. Must be between 0 and " + Long.MAX_VALUE + ".");
        }
        return r.value();
    }
}
