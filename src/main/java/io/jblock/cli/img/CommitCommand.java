package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.CacheOptions;
import io.jblock.block.DiscardMode;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.options.CacheModes;
import io.jblock.protocol.FileNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p]
 * filename}, as qemu-img 7.2's img_commit: every run the image or a backing
 * file above the base allocates is copied into the base (grown first when
 * it is shorter), the base is flushed, and then, without {@code -d}, the
 * image is emptied ({@link BlockNode#makeEmpty}) so that it reads through to
 * the base; a format that cannot be emptied is left as it is, as QEMU does.
 * Naming the base ({@code -b}) implies {@code -d}, as in qemu-img.
 *
 * <p>The base is found by a first open; the image is then opened again with
 * the base's node read-write ({@code backing.[backing.]read-only=off}),
 * which is how QEMU reopens it for the commit job.
 *
 * <p>QEMU runs the copy as a block job and its {@code -p} meter follows the
 * job; jblock's follows the bytes of the image walked.
 */
final class CommitCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    private static final int CHUNK = 2 * 1024 * 1024;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt = null;
        String cache = "writeback";
        String base = null;
        boolean drop = false;
        boolean progress = false;
        boolean quiet = false;
        boolean imageOpts = false;
        long rate = 0;
        CommandLine cl = new CommandLine(ctx, args, "f:ht:b:dpqr:", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.flag("image-opts", OPTION_IMAGE_OPTS));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> fmt = cl.optarg();
                case 't' -> cache = cl.optarg();
                case 'b' -> {
                    base = cl.optarg();
                    drop = true; // as in qemu-img: naming the base implies -d
                }
                case 'd' -> drop = true;
                case 'p' -> progress = true;
                case 'q' -> quiet = true;
                case 'r' -> rate = SizeArgument.parse(ctx, "rate limit", cl.optarg());
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (quiet) {
            progress = false;
        }
        if (cl.operands().size() != 1) {
            throw ctx.usageError("Expecting one image file name");
        }
        String filename = cl.operands().getFirst();
        Progress meter = new Progress(ctx.out(), progress, 1.0f);
        int status;
        try {
            status = commit(ctx, meter, filename, fmt, cache, base, drop, imageOpts, rate);
        } finally {
            meter.end();
        }
        if (status == 0 && !quiet) {
            ctx.out().print("Image committed.\n");
        }
        return status;
    }

    private static int commit(ImgContext ctx, Progress meter, String filename, String fmt, String cacheName,
                              String base, boolean drop, boolean imageOpts, long rate) throws ImgExit {
        CacheOptions cache = CacheModes.parseQemu(cacheName).orElse(null);
        if (cache == null) {
            ctx.error("Invalid cache option: " + cacheName);
            return 1;
        }
        ImageOpener.Request request = new ImageOpener.Request(filename, fmt, imageOpts, false, false);
        ImageOpener.Tuning tuning = new ImageOpener.Tuning(cache, DiscardMode.UNMAP);
        int depth;
        try (ImageOpener.Opened first = ImageOpener.open(ctx, request, tuning)) {
            meter.print(0, 100);
            depth = baseDepth(ctx, first.drive().root(), filename, base);
            if (depth < 0) {
                return 1;
            }
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
        String writable = "backing.".repeat(depth) + "read-only";
        try (ImageOpener.Opened image = ImageOpener.open(ctx, request, tuning,
                config -> config.options.put(writable, "off"))) {
            BlockNode top = image.drive().root();
            BlockNode baseNode = top;
            for (int i = 0; i < depth; i++) {
                baseNode = baseNode.child("backing");
            }
            try {
                copy(top, baseNode, depth, meter, rate);
                baseNode.flush();
                if (!drop) {
                    try {
                        top.makeEmpty();
                        image.drive().flush();
                    } catch (BlockException e) {
                        if (e.errno() != Errno.ENOTSUP) {
                            throw e;
                        }
                    }
                }
            } catch (BlockException e) {
                ctx.error(e.getMessage());
                return 1;
            }
            meter.print(100, 0);
            return 0;
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    /**
     * How many backing steps down the base is: the first backing file, or
     * the one {@code -b} names (QEMU's bdrv_find_backing_image: a relative
     * name is taken beside the image above it); -1 once reported.
     */
    private static int baseDepth(ImgContext ctx, BlockNode top, String filename, String base) {
        List<BlockNode> chain = new ArrayList<>();
        for (BlockNode n = top.child("backing"); n != null; n = n.child("backing")) {
            chain.add(n);
        }
        if (base == null) {
            if (chain.isEmpty()) {
                ctx.error("Image does not have a backing file");
                return -1;
            }
            return 1;
        }
        BlockNode above = top;
        for (int i = 0; i < chain.size(); i++) {
            Path overlay = hostPath(above);
            Path node = hostPath(chain.get(i));
            if (overlay != null && node != null) {
                Path dir = overlay.getParent();
                Path named = Path.of(base).isAbsolute() || dir == null ? Path.of(base) : dir.resolve(base);
                if (real(named).equals(real(node))) {
                    return i + 1;
                }
            }
            above = chain.get(i);
        }
        ctx.error("Did not find '" + base + "' in the backing chain of '" + filename + "'");
        return -1;
    }

    private static Path hostPath(BlockNode node) {
        for (BlockNode n = node; n != null; n = n.child("file")) {
            if (n instanceof FileNode f) {
                return f.path();
            }
        }
        return null;
    }

    private static Path real(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }

    /**
     * Copies every run the top or an image above the base allocates (status
     * depth 1 to {@code depth}) into the base: data as read through the top,
     * zero runs as zero writes.
     */
    private static void copy(BlockNode top, BlockNode base, int depth, Progress meter, long rate)
            throws BlockException {
        long size = top.length();
        long baseSize = base.length();
        if (baseSize < size) {
            // Over a longer backing file, the truncate zeroes the grown part itself (as QEMU's bdrv_co_truncate).
            base.truncate(size, false, Prealloc.OFF);
        }
        RateLimit limit = rate > 0 ? new RateLimit(rate) : null;
        ByteBuffer buf = ByteBuffer.allocate(CHUNK);
        for (long offset = 0; offset < size; ) {
            BlockStatus s = top.blockStatus(offset, Math.min(CHUNK, size - offset));
            long n = s.length();
            if (s.depth() >= 1 && s.depth() <= depth) {
                if (s.isZero() && !s.isData()) {
                    base.writeZeroes(offset, n, 0);
                } else {
                    top.read(offset, buf.clear().limit((int) n));
                    base.write(offset, buf.flip(), 0);
                }
                if (limit != null) {
                    limit.take(n);
                }
            } else if (s.depth() == 0 && offset < base.length()) {
                // Nothing above the base has these bytes, yet they read as zeroes: an image between ends
                // before them. What the base or its backing files hold there must become zeroes too.
                BlockStatus below = base.blockStatus(offset, n);
                n = below.length();
                if (below.depth() != 0) {
                    base.writeZeroes(offset, n, 0);
                }
            }
            offset += n;
            if (size > 0) {
                meter.print((float) n * 100 / size, 100);
            }
        }
    }
}
