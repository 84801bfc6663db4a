package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.format.qcow2.Qcow2Node;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename}.
 *
 * <p>Opens the image read-only (so probing a raw image draws no warning)
 * and without its backing file, as qemu-img's BDRV_O_NO_BACKING, and with
 * --backing-chain opens each backing file in turn; JSON output is then an
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
     * The image and, with {@code chain}, its backing files, as qemu-img's
     * collect_image_info_list: each image is opened on its own without its
     * backing file (BDRV_O_NO_BACKING), so a missing backing file only fails
     * the chain when the chain reaches it. The next image is the full backing
     * name, opened with the recorded backing format (else probed); -f and
     * --image-opts apply to the top image only. A name met twice is a loop.
     * QEMU compares names only, so a loop spelled differently each time
     * ("../d/a" from d/a) runs on until the name grows too long; jblock also
     * stops at a host file it has already opened.
     */
    private static List<ImageInfo> collect(ImgContext ctx, ImageOpener.Request top, boolean chain)
            throws ImgExit {
        List<ImageInfo> list = new ArrayList<>();
        Set<String> names = new HashSet<>();
        Set<Path> files = new HashSet<>();
        ImageOpener.Request request = top;
        while (request != null) {
            String name = request.name();
            if (!names.add(name)) {
                throw ctx.fail("Backing file '" + name + "' creates an infinite loop.");
            }
            ImageInfo info;
            try (ImageOpener.Opened image = ImageOpener.open(ctx, request, ImageOpener::withoutBacking)) {
                Path host = primaryFile(image.drive().root());
                if (chain && host != null && !files.add(realPath(host))) {
                    throw ctx.fail("Backing file '" + name + "' creates an infinite loop.");
                }
                info = describe(image);
            } catch (BlockException e) {
                throw ctx.fail(e.getMessage());
            }
            list.add(info);
            request = chain ? next(ctx, info, request.forceShare()) : null;
        }
        return list;
    }

    /** The backing file to open next in a chain, or null at its bottom. */
    private static ImageOpener.Request next(ImgContext ctx, ImageInfo info, boolean forceShare) throws ImgExit {
        ImageInfo.Backing b = info.backing();
        if (b == null) {
            return null;
        }
        if (b.full() == null) {
            throw ctx.fail("Could not determine absolute backing filename, but backing filename '" + b.name()
                    + "' present");
        }
        return new ImageOpener.Request(b.full(), b.format(), false, true, forceShare);
    }

    private static Path realPath(Path p) {
        try {
            return p.toRealPath();
        } catch (java.io.IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }

    private static ImageInfo describe(ImageOpener.Opened image) throws BlockException {
        BlockNode root = image.drive().root();
        long length = root.length();
        long virtualSize = (length + SECTOR - 1) / SECTOR * SECTOR;
        var info = root.info();
        return new ImageInfo(image.displayName(), info.formatName(), virtualSize, root.allocatedSize(),
                info.clusterSize(), false, info.formatSpecific(),
                root instanceof Qcow2Node q ? q.internalSnapshots().list() : List.of(), backing(root));
    }

    /**
     * The backing file the image records, as QEMU's bdrv_query_image_info
     * reports it: an empty name is none; the full name is the stored one when
     * it is absolute or names a protocol (json: included), else the stored one
     * after the folder of the image's host file as that was named
     * (bdrv_dirname: no normalising, so "sub/../b" stays).
     */
    private static ImageInfo.Backing backing(BlockNode root) throws BlockException {
        if (!(root instanceof Qcow2Node q)) {
            return null;
        }
        String name = q.recordedBackingName();
        if (name == null || name.isEmpty()) {
            return null;
        }
        String full;
        if (name.startsWith("/") || QemuFormats.protocolPrefix(name) != null) {
            full = name;
        } else {
            Path host = primaryFile(root);
            if (host == null) {
                full = null;
            } else {
                String h = host.toString();
                full = h.substring(0, h.lastIndexOf('/') + 1) + name;
            }
        }
        return new ImageInfo.Backing(name, full, q.recordedBackingFormat());
    }

    /**
     * The host file under the image, following each node's primary child (its
     * first: "file", blkdebug's "image"), as bdrv_dirname does; null when
     * there is none. (QEMU also gives up under a blkdebug node with a config
     * file; jblock does not see that one yet.)
     */
    private static Path primaryFile(BlockNode node) {
        for (BlockNode n = node; n != null; n = n.children().isEmpty() ? null : n.children().getFirst().node()) {
            if (n instanceof io.jblock.protocol.FileNode f) {
                return f.path();
            }
        }
        return null;
    }
}
