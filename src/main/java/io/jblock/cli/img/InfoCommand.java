package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename}.
 *
 * <p>Opens the image read-only (so probing a raw image draws no warning),
 * and with --backing-chain follows backing files; JSON output is then an
 * array, human output one block per image separated by a blank line.
 */
final class InfoCommand implements ImgCommand {
    private static final int OPTION_OUTPUT = 256;
    private static final int OPTION_BACKING_CHAIN = 257;
    private static final int OPTION_OBJECT = 258;
    private static final int OPTION_IMAGE_OPTS = 259;
    /** QEMU's block layer counts lengths in 512-byte sectors, so a 3-byte file is a 512-byte image. */
    private static final long SECTOR = 512;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt = null;
        String output = null;
        boolean chain = false;
        boolean imageOpts = false;
        boolean forceShare = false;
        CommandLine cl = new CommandLine(ctx, args, "f:hU", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("format", 'f'), CommandLine.withArgument("output", OPTION_OUTPUT),
                CommandLine.flag("backing-chain", OPTION_BACKING_CHAIN),
                CommandLine.withArgument("object", OPTION_OBJECT),
                CommandLine.flag("image-opts", OPTION_IMAGE_OPTS), CommandLine.flag("force-share", 'U'));
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
                case OPTION_BACKING_CHAIN -> chain = true;
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (cl.operands().size() != 1) {
            throw ctx.usageError("Expecting one image file name");
        }
        String filename = cl.operands().getFirst();
        boolean json = false;
        if ("json".equals(output)) {
            json = true;
        } else if (output != null && !output.equals("human")) {
            throw ctx.fail("--output must be used with human or json as argument.");
        }
        List<ImageInfo> list = collect(ctx, new ImageOpener.Request(filename, fmt, imageOpts, true, forceShare),
                chain);
        if (json) {
            Object value = chain ? list.stream().map(ImageInfo::toJson).toList() : list.getFirst().toJson();
            ctx.out().print(QemuJson.pretty(value) + "\n");
        } else {
            ctx.out().print(String.join("\n", list.stream().map(ImageInfo::toHuman).toList()));
        }
        return 0;
    }

    /**
     * The image and, with {@code chain}, its backing files. jblock's formats
     * so far have no backing files, so the chain is the image alone.
     */
    private static List<ImageInfo> collect(ImgContext ctx, ImageOpener.Request request, boolean chain)
            throws ImgExit {
        List<ImageInfo> list = new ArrayList<>();
        try (ImageOpener.Opened image = ImageOpener.open(ctx, request)) {
            list.add(describe(image));
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
        return list;
    }

    private static ImageInfo describe(ImageOpener.Opened image) throws BlockException {
        BlockNode root = image.drive().root();
        long length = root.length();
        long virtualSize = (length + SECTOR - 1) / SECTOR * SECTOR;
        var info = root.info();
        return new ImageInfo(image.displayName(), info.formatName(), virtualSize, root.allocatedSize(),
                info.clusterSize(), false, info.formatSpecific(),
                root instanceof io.jblock.format.qcow2.Qcow2Node q ? q.internalSnapshots().list() : List.of());
    }
}
