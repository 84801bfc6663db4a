package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.options.DriveConfig;
import io.jblock.format.qcow2.Qcow2Bitmaps;
import io.jblock.format.qcow2.Qcow2Node;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code bitmap (--merge SOURCE | --add | --remove | --clear | --enable |
 * --disable)... [-b source_file [-F source_fmt]] [-g granularity] [--object
 * objectdef] [--image-opts | -f fmt] filename bitmap}, as qemu-img 7.2's
 * img_bitmap: the image is opened read-write without its backing chain, the
 * actions run in the order given, and the first one that fails ends the
 * command ("Operation ACTION on bitmap NAME failed: ...", exit 1) after the
 * image is closed, so what the earlier actions did is stored.
 */
final class BitmapCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    private static final int OPTION_ADD = 258;
    private static final int OPTION_REMOVE = 259;
    private static final int OPTION_CLEAR = 260;
    private static final int OPTION_ENABLE = 261;
    private static final int OPTION_DISABLE = 262;
    private static final int OPTION_MERGE = 263;

    private enum Kind { ADD, REMOVE, CLEAR, ENABLE, DISABLE, MERGE }

    private record Action(Kind kind, String source) {
    }

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        List<Action> actions = new ArrayList<>();
        String fmt = null;
        String srcFmt = null;
        String srcFilename = null;
        long granularity = 0;
        boolean imageOpts = false;
        CommandLine cl = new CommandLine(ctx, args, "b:f:F:g:h", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.flag("add", OPTION_ADD), CommandLine.flag("remove", OPTION_REMOVE),
                CommandLine.flag("clear", OPTION_CLEAR), CommandLine.flag("enable", OPTION_ENABLE),
                CommandLine.flag("disable", OPTION_DISABLE), CommandLine.withArgument("merge", OPTION_MERGE),
                CommandLine.withArgument("granularity", 'g'), CommandLine.withArgument("source-file", 'b'),
                CommandLine.withArgument("source-format", 'F'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'b' -> srcFilename = cl.optarg();
                case 'f' -> fmt = cl.optarg();
                case 'F' -> srcFmt = cl.optarg();
                case 'g' -> granularity = SizeArgument.parse(ctx, "granularity", cl.optarg());
                case OPTION_ADD -> actions.add(new Action(Kind.ADD, null));
                case OPTION_REMOVE -> actions.add(new Action(Kind.REMOVE, null));
                case OPTION_CLEAR -> actions.add(new Action(Kind.CLEAR, null));
                case OPTION_ENABLE -> actions.add(new Action(Kind.ENABLE, null));
                case OPTION_DISABLE -> actions.add(new Action(Kind.DISABLE, null));
                case OPTION_MERGE -> actions.add(new Action(Kind.MERGE, cl.optarg()));
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (actions.isEmpty()) {
            throw ctx.fail("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge");
        }
        boolean add = actions.stream().anyMatch(a -> a.kind() == Kind.ADD);
        boolean merge = actions.stream().anyMatch(a -> a.kind() == Kind.MERGE);
        if (granularity != 0 && !add) {
            throw ctx.fail("granularity only supported with --add");
        }
        if (srcFmt != null && srcFilename == null) {
            throw ctx.fail("-F only supported with -b");
        }
        if (srcFilename != null && !merge) {
            throw ctx.fail("Merge bitmap source file only supported with --merge");
        }
        if (cl.operands().size() != 2) {
            throw ctx.fail("Expecting filename and bitmap name");
        }
        String filename = cl.operands().get(0);
        String bitmap = cl.operands().get(1);
        ImageOpener.Opened image = ImageOpener.open(ctx,
                new ImageOpener.Request(filename, fmt, imageOpts, false, false), BitmapCommand::noBacking);
        ImageOpener.Opened source = null;
        String failure = null;
        try {
            if (srcFilename != null) {
                source = ImageOpener.open(ctx, new ImageOpener.Request(srcFilename, srcFmt, false, true, false),
                        BitmapCommand::noBacking);
            }
            Qcow2Bitmaps target = bitmapsOf(image);
            Qcow2Bitmaps from = source != null ? bitmapsOf(source) : target;
            String nodeName = nodeName();
            for (Action a : actions) {
                try {
                    apply(a, target, from, bitmap, granularity, nodeName);
                } catch (BlockException e) {
                    failure = "Operation " + a.kind().name().toLowerCase(java.util.Locale.ROOT) + " on bitmap "
                            + bitmap + " failed: " + e.getMessage();
                    break;
                }
            }
        } finally {
            // Closing stores what the actions did so far, also after one failed (as blk_unref in img_bitmap).
            closeQuietly(ctx, source);
            closeQuietly(ctx, image);
        }
        if (failure != null) {
            throw ctx.fail(failure);
        }
        return 0;
    }

    private static void noBacking(DriveConfig config) {
        if (!"raw".equals(config.options.peek("driver"))) {
            config.options.put("backing", null); // QEMU's BDRV_O_NO_BACKING: bitmaps do not need the chain
        }
    }

    private static void apply(Action a, Qcow2Bitmaps target, Qcow2Bitmaps from, String bitmap, long granularity,
                              String nodeName) throws BlockException {
        if (target == null) {
            if (a.kind() == Kind.ADD) {
                throw new BlockException(Errno.ENOTSUP, "Can't store persistent bitmaps to " + nodeName + ": "
                        + Errno.ENOTSUP.text());
            }
            throw notFound(bitmap);
        }
        switch (a.kind()) {
            case ADD -> target.add(bitmap, granularity, false, nodeName);
            case REMOVE -> target.remove(bitmap);
            case CLEAR -> target.clear(bitmap);
            case ENABLE -> target.setEnabled(bitmap, true);
            case DISABLE -> target.setEnabled(bitmap, false);
            case MERGE -> target.merge(bitmap, from, a.source()); // a source without bitmaps (raw): null
        }
    }

    private static BlockException notFound(String name) {
        return new BlockException(Errno.EINVAL, "Dirty bitmap '" + name + "' not found");
    }

    /** The bitmaps of the image's format node, or null where the format has none (raw). */
    static Qcow2Bitmaps bitmapsOf(ImageOpener.Opened image) {
        BlockNode root = image.drive().root();
        return root instanceof Qcow2Node q ? q.bitmaps() : null;
    }

    /**
     * The name QEMU's messages give an anonymous node: "#block", its node
     * counter (1: the first node qemu-img opened) and two random digits.
     */
    static String nodeName() {
        return "#block1" + String.format("%02d", java.util.concurrent.ThreadLocalRandom.current().nextInt(100));
    }

    private static void closeQuietly(ImgContext ctx, ImageOpener.Opened image) {
        if (image == null) {
            return;
        }
        try {
            image.close();
        } catch (BlockException e) {
            ctx.error(e.getMessage());
        }
    }
}
