package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.format.qcow2.Qcow2Measure;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code measure [--output=ofmt] [-O output_fmt] [-o options] [--size N |
 * [--object objectdef] [--image-opts] [-f fmt] [-l snapshot_param] filename]}:
 * the size an image of format {@code -O} (raw by default) would take, for a
 * virtual size or to hold a given image, checked and printed as qemu-img
 * 7.2 does ("required size: N", "fully allocated size: N", and "bitmaps
 * size: N" when both formats could carry persistent bitmaps).
 */
final class MeasureCommand implements ImgCommand {
    private static final int OPTION_OUTPUT = 256;
    private static final int OPTION_SIZE = 257;
    private static final int OPTION_OBJECT = 258;
    private static final int OPTION_IMAGE_OPTS = 259;
    private static final long SECTOR = 512;
    private static final long UNSET = -1;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt = null;
        String outFmt = "raw";
        String options = null;
        String snapshot = null;
        SnapshotParam snapshotParam = null;
        boolean forceShare = false;
        boolean imageOpts = false;
        boolean json = false;
        long size = UNSET;
        CommandLine cl = new CommandLine(ctx, args, "hf:O:o:l:s:U", CommandLine.flag("help", 'h'),
                CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.withArgument("output", OPTION_OUTPUT),
                CommandLine.withArgument("size", OPTION_SIZE), CommandLine.flag("force-share", 'U'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> fmt = cl.optarg();
                case 'O' -> outFmt = cl.optarg();
                case 'o' -> {
                    if (!CreateOptions.isValidList(cl.optarg())) {
                        throw ctx.fail("Invalid option list: " + cl.optarg());
                    }
                    options = options == null ? cl.optarg() : options + "," + cl.optarg();
                }
                case 'l' -> {
                    snapshotParam = SnapshotParam.parse(ctx, cl.optarg());
                    snapshot = cl.optarg();
                }
                case 'U' -> forceShare = true;
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                case OPTION_OUTPUT -> {
                    if (cl.optarg().equals("json")) {
                        json = true;
                    } else if (cl.optarg().equals("human")) {
                        json = false;
                    } else {
                        throw ctx.fail("--output must be used with human or json as argument.");
                    }
                }
                case OPTION_SIZE -> size = SizeArgument.parse(ctx, "image size", cl.optarg());
                default -> throw new IllegalStateException("option " + c);
            }
        }
        List<String> operands = cl.operands();
        if (operands.size() > 1) {
            throw ctx.fail("At most one filename argument is allowed.");
        }
        String filename = operands.isEmpty() ? null : operands.getFirst();
        if (filename == null && (imageOpts || fmt != null || snapshot != null)) {
            throw ctx.fail("--image-opts, -f, and -l require a filename argument.");
        }
        if (filename != null && size != UNSET) {
            throw ctx.fail("--size N cannot be used together with a filename.");
        }
        if (filename == null && size == UNSET) {
            throw ctx.fail("Either --size N or one filename must be specified.");
        }
        ImageOpener.Opened in = null;
        if (filename != null) {
            in = ImageOpener.open(ctx, new ImageOpener.Request(filename, fmt, imageOpts, true, forceShare));
        }
        try (ImageOpener.Opened input = in) {
            if (snapshotParam != null) {
                snapshotParam.load(ctx, input.drive().root());
            }
            return measure(ctx, outFmt, options, size, input == null ? null : input.drive().root(), json);
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    private static int measure(ImgContext ctx, String outFmt, String optionText, long size, BlockNode input,
                               boolean json) throws ImgExit, BlockException {
        List<CreateOptions.Desc> descs = switch (outFmt) {
            case "raw" -> CreateOptions.RAW;
            case "qcow2" -> CreateOptions.QCOW2;
            default -> null;
        };
        if (descs == null) {
            if (outFmt.equals("file") || QemuFormats.QEMU_DRIVERS.contains(outFmt)) {
                throw ctx.fail("Block driver '" + outFmt + "' does not support size measurement");
            }
            throw ctx.fail("Unknown file format '" + outFmt + "'");
        }
        CreateOptions opts = new CreateOptions(CreateOptions.append(descs, CreateOptions.FILE));
        if (optionText != null) {
            try {
                opts.parse(optionText, ctx::warn);
            } catch (CreateOptions.Invalid e) {
                ctx.error(e.getMessage());
                throw ctx.fail("Invalid options for file format '" + outFmt + "'");
            }
        }
        if (size != UNSET) {
            opts.setNumber("size", size);
        }
        long required;
        long fully;
        long bitmaps = -1;
        if (outFmt.equals("raw")) {
            required = input != null ? input.length() : (opts.size("size", 0) + SECTOR - 1) / SECTOR * SECTOR;
            fully = required;
        } else {
            Qcow2Measure.Result r = Qcow2Measure.measure(opts.valuesOf(descs), opts.size("size", 0), input);
            required = r.required();
            fully = r.fullyAllocated();
            bitmaps = r.bitmaps();
        }
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            if (bitmaps >= 0) {
                m.put("bitmaps", bitmaps);
            }
            m.put("required", required);
            m.put("fully-allocated", fully);
            ctx.out().print(QemuJson.pretty(m) + "\n");
        } else {
            ctx.out().print("required size: " + Long.toUnsignedString(required) + "\n"
                    + "fully allocated size: " + Long.toUnsignedString(fully) + "\n"
                    + (bitmaps >= 0 ? "bitmaps size: " + bitmaps + "\n" : ""));
        }
        return 0;
    }
}
