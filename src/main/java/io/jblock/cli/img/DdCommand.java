package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;

import java.nio.ByteBuffer;

/**
 * {@code dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks]
 * if=input of=output}: qemu-img 7.2's dd. It creates the output (raw unless
 * -O) and copies the input block by block, every block written (the output
 * is not sparse). Its units are qemu-img's, not dd(1)'s: count limits the
 * input's length to count blocks first, and skip then starts inside that
 * length, so {@code count=3 skip=2} copies one block. A skip past the end
 * is reported and gives an empty output with status 0, like dd(1).
 */
final class DdCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;

    /** What the operands set. */
    private static final class Operands {
        int bs = 512;
        long count;
        long skip;
        String in;
        String out;
        boolean hasCount;
        boolean hasSkip;
    }

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String outFmt = "raw";
        String fmt = null;
        boolean imageOpts = false;
        boolean forceShare = false;
        CommandLine cl = new CommandLine(ctx, args, "hf:O:U", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.flag("force-share", 'U'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'O' -> outFmt = cl.optarg();
                case 'f' -> fmt = cl.optarg();
                case 'U' -> forceShare = true;
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        Operands o = operands(ctx, cl);
        if (o.in == null || o.out == null) {
            throw ctx.fail("Must specify both input and output files");
        }
        try (ImageOpener.Opened input = ImageOpener.open(ctx,
                new ImageOpener.Request(o.in, fmt, imageOpts, true, forceShare))) {
            return copy(ctx, input.drive().root(), outFmt, o);
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    private static Operands operands(ImgContext ctx, CommandLine cl) throws ImgExit {
        Operands o = new Operands();
        for (String arg : cl.operands()) {
            int eq = arg.indexOf('=');
            String name = eq < 0 ? arg : arg.substring(0, eq);
            String value = eq < 0 ? null : arg.substring(eq + 1);
            switch (eq < 0 ? "" : name) {
                case "bs" -> o.bs = (int) number(ctx, "bs", value, 1, Integer.MAX_VALUE);
                case "count" -> {
                    o.count = number(ctx, "count", value, 0, Long.MAX_VALUE);
                    o.hasCount = true;
                }
                case "if" -> o.in = value;
                case "of" -> o.out = value;
                case "skip" -> {
                    o.skip = number(ctx, "skip", value, 0, Long.MAX_VALUE);
                    o.hasSkip = true;
                }
                default -> throw ctx.fail("unrecognized operand " + name);
            }
        }
        return o;
    }

    /** qemu-img's cvtnum_full: a size with suffixes, between {@code min} and {@code max}. */
    private static long number(ImgContext ctx, String what, String text, long min, long max) throws ImgExit {
        QemuSize.Result r = QemuSize.parse(text, ctx::warn);
        if (r.failure() == QemuSize.Failure.INVALID) {
            ctx.error("Invalid " + what + " specified. You may use k, M, G, T, P or E suffixes for");
            ctx.error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
            throw new ImgExit(1);
        }
        if (r.failure() == QemuSize.Failure.OUT_OF_RANGE || Long.compareUnsigned(r.value(), max) > 0
                || Long.compareUnsigned(r.value(), min) < 0) {
            throw ctx.fail("Invalid " + what + " specified. Must be between " + min + " and " + max + ".");
        }
        return r.value();
    }

    private static int copy(ImgContext ctx, BlockNode input, String outFmt, Operands o)
            throws ImgExit, BlockException {
        long size = SectorImage.length(input);
        if (o.hasCount && o.count <= Long.MAX_VALUE / o.bs && o.count * o.bs < size) {
            size = o.count * o.bs;
        }
        // Overflow means the offset is beyond the input's size.
        boolean skipTooFar = o.hasSkip && (o.skip > Long.MAX_VALUE / o.bs || size < o.bs * o.skip);
        long outSize = skipTooFar ? 0 : size - o.bs * o.skip;
        ConvertTarget.Plan plan = planOutput(ctx, outFmt, o.out, outSize);
        // qemu-img 7.2 empties the input here when it is also the output; jblock refuses.
        SourceGuard.refuseIfRead(ctx, java.util.List.of(input), plan.path(),
                o.out + ": error while creating output image: ");
        ConvertTarget.create(ctx, plan, o.out + ": error while creating output image: ");
        try (ImageOpener.Opened output = ImageOpener.open(ctx,
                new ImageOpener.Request(o.out, outFmt, false, false, false))) {
            Drive out = output.drive();
            long inPos;
            if (skipTooFar) {
                // Like dd(1): an empty output, and a word about it (but still status 0, as qemu-img).
                ctx.error(o.in + ": cannot skip to specified offset");
                inPos = size;
            } else {
                inPos = o.skip * o.bs;
            }
            ByteBuffer buf = ConvertJob.pageAligned(o.bs);
            long outPos = 0;
            while (inPos < size) {
                int bytes = (int) Math.min(o.bs, size - inPos);
                buf.clear().limit(bytes);
                try {
                    readPadded(input, inPos, buf);
                } catch (BlockException e) {
                    throw ctx.fail("error while reading from input image file: " + e.errno().text());
                }
                inPos += bytes;
                try {
                    out.write(outPos, buf, WriteFlags.NONE);
                } catch (BlockException e) {
                    throw ctx.fail("error while writing to output image file: " + e.errno().text());
                }
                outPos += bytes;
            }
            return 0;
        }
    }

    /** The output's creation, with dd's message for an unknown format. */
    private static ConvertTarget.Plan planOutput(ImgContext ctx, String fmt, String filename, long size)
            throws ImgExit {
        if (!QemuFormats.QEMU_DRIVERS.contains(fmt)
                && io.jblock.options.DriverRegistry.standard().find(fmt).isEmpty()) {
            throw ctx.fail("Unknown file format");
        }
        return ConvertTarget.plan(ctx, fmt, filename, null, size, null, null);
    }

    /** Reads up to the node's true end and zeroes for the rest of its last sector. */
    private static void readPadded(BlockNode src, long offset, ByteBuffer dst) throws BlockException {
        long length = src.length();
        int real = (int) Math.max(0, Math.min(dst.remaining(), length - offset));
        if (real > 0) {
            src.read(offset, dst.slice(dst.position(), real));
        }
        ZeroScan.fill(dst.duplicate().position(dst.position() + real));
    }
}
