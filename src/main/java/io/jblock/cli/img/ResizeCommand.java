package io.jblock.cli.img;

import io.jblock.options.ImageUse;
import io.jblock.block.BlockException;
import io.jblock.block.Choice;
import io.jblock.block.Drive;
import io.jblock.block.Prealloc;

import java.util.Arrays;

/**
 * {@code resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink]
 * filename [+ | -]size}: sets the image's length, absolutely or relative to
 * its current (sector-rounded) length, through {@code BlockNode.truncate}
 * with {@code exact}, as qemu-img 7.2 does. Shrinking needs --shrink, and
 * preallocation is only for growing.
 *
 * <p>The size is the last argument and is taken off before the options are
 * read, so that "-1M" is not an option.
 */
final class ResizeCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    private static final int OPTION_PREALLOCATION = 258;
    private static final int OPTION_SHRINK = 259;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        if (args.length < 3) {
            throw ctx.usageError("Not enough arguments");
        }
        String size = args[args.length - 1];
        String fmt = null;
        boolean quiet = false;
        boolean imageOpts = false;
        boolean shrink = false;
        Prealloc prealloc = Prealloc.OFF;
        CommandLine cl = new CommandLine(ctx, Arrays.copyOf(args, args.length - 1), "f:hq",
                CommandLine.flag("help", 'h'), CommandLine.withArgument("object", OPTION_OBJECT),
                CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.withArgument("preallocation", OPTION_PREALLOCATION),
                CommandLine.flag("shrink", OPTION_SHRINK));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> fmt = cl.optarg();
                case 'q' -> quiet = true;
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                case OPTION_PREALLOCATION -> {
                    String mode = cl.optarg();
                    prealloc = Choice.parse(Prealloc.class, mode)
                            .orElseThrow(() -> ctx.fail("Invalid preallocation mode '" + mode + "'"));
                }
                case OPTION_SHRINK -> shrink = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (cl.operands().size() != 1) {
            throw ctx.usageError("Expecting image file name and size");
        }
        String filename = cl.operands().getFirst();
        int relative = size.startsWith("+") ? 1 : size.startsWith("-") ? -1 : 0;
        if (relative != 0) {
            size = size.substring(1);
        }
        CreateOptions param = new CreateOptions(java.util.List.of(CreateOptions.SIZE));
        try {
            param.set("size", size, ctx::warn);
        } catch (CreateOptions.Invalid e) {
            throw ctx.fail(e.getMessage());
        }
        long n = param.size("size", 0);
        try (ImageOpener.Opened image = ImageOpener.open(ctx,
                new ImageOpener.Request(filename, fmt, imageOpts, false, false),
                ImageOpener.Tuning.DEFAULT.as(ImageUse.RESIZE))) {
            Drive drive = image.drive();
            long current = SectorImage.length(drive.root());
            long total = relative != 0 ? current + n * relative : n;
            if (total <= 0) {
                throw ctx.fail("New image size must be positive");
            }
            if (total <= current && prealloc != Prealloc.OFF) {
                throw ctx.fail("Preallocation can only be used for growing images");
            }
            if (total < current && !shrink) {
                ctx.error("Use the --shrink option to perform a shrink operation.");
                ctx.warn("Shrinking an image will delete all data beyond the shrunken image's end. Before"
                        + " performing such an operation, make sure there is no important data there.");
                throw new ImgExit(1);
            }
            try {
                // exact: the user wants this size, and nothing else counts as done.
                drive.truncate(total, true, prealloc);
            } catch (BlockException e) {
                throw ctx.fail(e.getMessage());
            }
            if (!quiet) {
                ctx.out().print("Image resized.\n");
            }
            return 0;
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }
}
