package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

import java.io.PrintStream;

/**
 * {@code map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len]
 * [--output=ofmt] [-U] filename}: where each run of the image's bytes comes
 * from, as qemu-img 7.2 prints it. JSON lists every run (merged while they
 * stay alike); the human table lists only data, with its host offset and
 * file, and fails on data without one (compressed clusters).
 */
final class MapCommand implements ImgCommand {
    private static final int OPTION_OUTPUT = 256;
    private static final int OPTION_OBJECT = 257;
    private static final int OPTION_IMAGE_OPTS = 258;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt = null;
        String output = null;
        boolean imageOpts = false;
        boolean forceShare = false;
        long startOffset = 0;
        long maxLength = -1;
        CommandLine cl = new CommandLine(ctx, args, "f:s:l:hU", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("format", 'f'), CommandLine.withArgument("output", OPTION_OUTPUT),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.flag("force-share", 'U'), CommandLine.withArgument("start-offset", 's'),
                CommandLine.withArgument("max-length", 'l'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> fmt = cl.optarg();
                case 'U' -> forceShare = true;
                case OPTION_OUTPUT -> output = cl.optarg();
                case 's' -> startOffset = SizeArgument.parse(ctx, "start offset", cl.optarg());
                case 'l' -> maxLength = SizeArgument.parse(ctx, "max length", cl.optarg());
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (cl.operands().size() != 1) {
            throw ctx.usageError("Expecting one image file name");
        }
        String filename = cl.operands().getFirst();
        boolean json;
        if ("json".equals(output)) {
            json = true;
        } else if (output == null || output.equals("human")) {
            json = false;
        } else {
            throw ctx.fail("--output must be used with human or json as argument.");
        }
        try (ImageOpener.Opened image = ImageOpener.open(ctx,
                new ImageOpener.Request(filename, fmt, imageOpts, true, forceShare))) {
            return map(ctx, filename, image.drive().root(), json, startOffset, maxLength);
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    private static int map(ImgContext ctx, String filename, BlockNode root, boolean json, long startOffset, long maxLength) {
        PrintStream out = ctx.out();
        if (json) {
            out.print("[");
        } else {
            out.print(String.format("%-16s%-16s%-16s%s%n", "Offset", "Length", "Mapped to", "File"));
        }
        long length;
        try {
            length = SectorImage.length(root);
        } catch (BlockException e) {
            ctx.error("Failed to get size for '" + filename + "'");
            return 1;
        }
        if (maxLength != -1) {
            length = Math.min(saturatedAdd(startOffset, maxLength), length);
        }
        MapEntry curr = new MapEntry(startOffset, 0, 0, false, false, false, -1, null);
        while (curr.start() + curr.length() < length) {
            long offset = curr.start() + curr.length();
            MapEntry next;
            try {
                next = MapEntry.at(root, offset, length - offset);
            } catch (BlockException e) {
                ctx.error("Could not read file metadata: " + e.errno().text());
                return 1;
            }
            if (curr.mergeableWith(next)) {
                curr = curr.withLength(curr.length() + next.length());
                continue;
            }
            if (curr.length() > 0) {
                if (!dump(ctx, json, curr, next)) {
                    return 1;
                }
                if (!json && (!next.data() || next.zero())) {
                    next = next.asHumanHole();
                }
            }
            curr = next;
        }
        if (!dump(ctx, json, curr, null)) {
            return 1;
        }
        if (json) {
            out.print("]\n");
        }
        return 0;
    }

    /** qemu-img's dump_map_entry; false when the human format cannot show the run. */
    private static boolean dump(ImgContext ctx, boolean json, MapEntry e, MapEntry next) {
        if (json) {
            ctx.out().print(e.json() + (next != null ? ",\n" : ""));
            return true;
        }
        if (e.data() && !e.hasOffset()) {
            ctx.out().flush();
            ctx.error("File contains external, encrypted or compressed clusters.");
            return false;
        }
        if (e.data() && !e.zero()) {
            ctx.out().print(MapEntry.hexColumn(e.start()) + MapEntry.hexColumn(e.length())
                    + MapEntry.hexColumn(e.hasOffset() ? e.offset() : 0)
                    + (e.filename() != null ? e.filename() : "") + "\n");
        }
        return true;
    }

    private static long saturatedAdd(long a, long b) {
        long r = a + b;
        return r < 0 ? Long.MAX_VALUE : r;
    }
}
