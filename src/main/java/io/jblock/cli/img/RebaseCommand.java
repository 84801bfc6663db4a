package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.CacheOptions;
import io.jblock.block.DiscardMode;
import io.jblock.block.Errno;
import io.jblock.block.NodeInfo;
import io.jblock.options.CacheModes;
import io.jblock.options.DriverRegistry;
import io.jblock.protocol.FileNode;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * {@code rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u]
 * -b backing_file [-F backing_fmt] filename}, as qemu-img 7.2's img_rebase.
 *
 * <p>Unsafe mode ({@code -u}) opens the image without its backing file and
 * only rewrites what its header says. Safe mode first makes the image read
 * the same over the new backing file: in every run the image does not
 * allocate itself, the old and the new backing file are compared sector by
 * sector (either counts as zeroes past its end; no new backing file, with
 * {@code -b ""}, is all zeroes), and where they differ the old bytes are
 * written into the image (a zero write where the old backing file has
 * ended). Only then does the header change, so a crash in between leaves
 * the image reading as before.
 */
final class RebaseCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    /** qemu-img's IO_BUF_SIZE: the most compared per step. */
    private static final int CHUNK = 2 * 1024 * 1024;
    private static final int SECTOR = 512;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt = null;
        String cache = "writeback";
        String srcCache = "writeback";
        String backing = null;
        String backingFmt = null;
        boolean unsafe = false;
        boolean progress = false;
        boolean quiet = false;
        boolean imageOpts = false;
        boolean forceShare = false;
        CommandLine cl = new CommandLine(ctx, args, "hf:F:b:upt:T:qU", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.flag("force-share", 'U'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> fmt = cl.optarg();
                case 'F' -> backingFmt = cl.optarg();
                case 'b' -> backing = cl.optarg();
                case 'u' -> unsafe = true;
                case 'p' -> progress = true;
                case 't' -> cache = cl.optarg();
                case 'T' -> srcCache = cl.optarg();
                case 'q' -> quiet = true;
                case 'U' -> forceShare = true;
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
        if (!unsafe && backing == null) {
            throw ctx.usageError("Must specify backing file (-b) or use unsafe mode (-u)");
        }
        String filename = cl.operands().getFirst();
        Progress meter = new Progress(ctx.out(), progress, 2.0f);
        meter.print(0, 100);
        try {
            return rebase(ctx, meter, new Args(filename, fmt, cache, srcCache, backing, backingFmt, unsafe,
                    imageOpts, forceShare));
        } finally {
            meter.end();
        }
    }

    private record Args(String filename, String fmt, String cache, String srcCache, String backing,
                        String backingFmt, boolean unsafe, boolean imageOpts, boolean forceShare) {
    }

    private static int rebase(ImgContext ctx, Progress meter, Args a) throws ImgExit {
        CacheOptions cache = CacheModes.parseQemu(a.cache()).orElse(null);
        if (cache == null) {
            ctx.error("Invalid cache option: " + a.cache());
            return 1;
        }
        CacheOptions srcCache = CacheModes.parseQemu(a.srcCache()).orElse(null);
        if (srcCache == null) {
            ctx.error("Invalid source cache option: " + a.srcCache());
            return 1;
        }
        boolean unsafe = a.unsafe();
        try (ImageOpener.Opened image = ImageOpener.open(ctx,
                new ImageOpener.Request(a.filename(), a.fmt(), a.imageOpts(), false, false),
                new ImageOpener.Tuning(cache, DiscardMode.IGNORE), config -> {
                    if (unsafe && !"raw".equals(config.options.peek("driver"))) {
                        config.options.put("backing", null); // QEMU's BDRV_O_NO_BACKING
                    }
                })) {
            BlockNode top = image.drive().root();
            if (a.backingFmt() != null && !knownFormat(a.backingFmt())) {
                ctx.error("Invalid format name: '" + a.backingFmt() + "'");
                return 1;
            }
            boolean newBacking = a.backing() != null && !a.backing().isEmpty();
            if (!unsafe) {
                ImageOpener.Opened target = null;
                if (newBacking) {
                    try {
                        target = ImageOpener.openOrThrow(ctx, new ImageOpener.Request(
                                        besideImage(a.backing(), a.filename(), a.imageOpts(), top).toString(),
                                        a.backingFmt(), false, true, a.forceShare()), null,
                                new ImageOpener.Tuning(srcCache, DiscardMode.IGNORE), config -> { });
                    } catch (BlockException e) {
                        ctx.error("Could not open new backing file '" + a.backing() + "': " + e.getMessage());
                        return 1;
                    }
                }
                try (ImageOpener.Opened newImage = target) {
                    if (!copyDifferences(ctx, meter, image, top.child("backing"),
                            newImage == null ? null : newImage.drive().root())) {
                        return 1;
                    }
                }
            }
            return changeBacking(ctx, meter, top, newBacking ? a.backing() : null,
                    newBacking ? a.backingFmt() : null, a.backing()) ? 0 : 1;
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    /** qemu-img's bdrv_find_format: any driver QEMU has, jblock's own included. */
    private static boolean knownFormat(String name) {
        return DriverRegistry.standard().find(name).isPresent() || QemuFormats.QEMU_DRIVERS.contains(name)
                || QemuFormats.QEMU_PROTOCOLS.contains(name);
    }

    /**
     * QEMU's bdrv_get_full_backing_filename_from_filename: an absolute name,
     * or one with a protocol prefix, as it is; a relative one beside the
     * image, as the image was named.
     */
    private static Path besideImage(String name, String filename, boolean imageOpts, BlockNode top) {
        Path p = Path.of(name);
        String prefix = QemuFormats.protocolPrefix(name);
        if (p.isAbsolute() || (prefix != null && !prefix.isEmpty())) {
            return p;
        }
        Path image = null;
        if (!imageOpts && !filename.startsWith("json:")) {
            image = Path.of(filename.startsWith("file:") ? filename.substring(5) : filename);
        } else {
            for (BlockNode n = top; n != null; n = n.child("file")) {
                if (n instanceof FileNode f) {
                    image = f.path();
                    break;
                }
            }
        }
        Path dir = image == null ? null : image.getParent();
        return dir == null ? p : dir.resolve(p);
    }

    /** The safe mode's copy; false once an error was reported. */
    private static boolean copyDifferences(ImgContext ctx, Progress meter, ImageOpener.Opened image,
                                           BlockNode oldBacking, BlockNode newBacking) throws ImgExit {
        BlockNode top = image.drive().root();
        long size;
        long oldSize;
        long newSize;
        try {
            size = top.length();
            oldSize = oldBacking == null ? 0 : oldBacking.length();
            newSize = newBacking == null ? 0 : newBacking.length();
        } catch (BlockException e) {
            ctx.error("Could not get size of '" + image.displayName() + "': " + e.errno().text());
            return false;
        }
        float step = size == 0 ? 0 : 100f / (float) (size / Math.min(size, CHUNK));
        ByteBuffer oldBuf = ByteBuffer.allocate(CHUNK);
        ByteBuffer newBuf = ByteBuffer.allocate(CHUNK);
        long n;
        for (long offset = 0; offset < size; offset += n) {
            n = Math.min(CHUNK, size - offset);
            BlockStatus s;
            try {
                s = top.blockStatus(offset, n);
            } catch (BlockException e) {
                ctx.error("error while reading image metadata: " + e.errno().text());
                return false;
            }
            n = s.length();
            if (s.isAllocated()) {
                continue;
            }
            try {
                n = unallocatedRun(top, offset, n, Math.min(CHUNK, size - offset));
            } catch (BlockException e) {
                ctx.error("error while reading image metadata: " + e.errno().text());
                return false;
            }
            oldBuf.clear();
            newBuf.clear();
            boolean oldIsZero = offset >= oldSize;
            if (oldIsZero) {
                zero(oldBuf, (int) n);
            } else {
                n = Math.min(n, oldSize - offset);
                try {
                    oldBacking.read(offset, oldBuf.clear().limit((int) n));
                } catch (BlockException e) {
                    ctx.error("error while reading from old backing file");
                    return false;
                }
            }
            if (newBacking == null || offset >= newSize) {
                zero(newBuf, (int) n);
            } else {
                n = Math.min(n, newSize - offset);
                try {
                    newBacking.read(offset, newBuf.clear().limit((int) n));
                } catch (BlockException e) {
                    ctx.error("error while reading from new backing file");
                    return false;
                }
            }
            long written = 0;
            while (written < n) {
                long same = run(oldBuf, newBuf, (int) written, (int) (n - written));
                boolean differ = same < 0;
                long len = Math.abs(same);
                if (differ) {
                    try {
                        if (oldIsZero) {
                            image.drive().writeZeroes(offset + written, len, 0);
                        } else {
                            image.drive().write(offset + written,
                                    oldBuf.duplicate().limit((int) (written + len)).position((int) written), 0);
                        }
                    } catch (BlockException e) {
                        ctx.error("Error while writing to COW image: " + e.errno().text());
                        return false;
                    }
                }
                written += len;
            }
            meter.print(step, 100);
        }
        return true;
    }

    /**
     * How far the run the image does not allocate goes from {@code offset},
     * up to {@code max}: jblock's status splits it where the backing file's
     * runs end, QEMU's bdrv_is_allocated does not (and the progress meter
     * counts steps).
     */
    private static long unallocatedRun(BlockNode top, long offset, long n, long max) throws BlockException {
        long table = l2Coverage(top);
        if (table > 0) {
            long boundary = (offset / table + 1) * table;
            max = Math.min(max, boundary - offset);
            n = Math.min(n, max);
        }
        while (n < max) {
            BlockStatus next = top.blockStatus(offset + n, max - n);
            if (next.isAllocated()) {
                break;
            }
            n += next.length();
        }
        return n;
    }

    /**
     * The guest bytes one qcow2 L2 table maps (0 for other formats): QEMU's
     * qcow2 block status ends a run where its L2 table (slice) ends.
     */
    private static long l2Coverage(BlockNode node) throws BlockException {
        NodeInfo info = node.info();
        if (!"qcow2".equals(info.formatName()) || info.clusterSize() <= 0) {
            return 0;
        }
        long entry = Boolean.TRUE.equals(info.formatSpecific().get("extended-l2")) ? 16 : 8;
        return info.clusterSize() * (info.clusterSize() / entry);
    }

    /**
     * QEMU's compare_buffers: how far from {@code at} the two buffers go on
     * agreeing or disagreeing as the first sector does, in whole sectors;
     * negative when they disagree.
     */
    private static long run(ByteBuffer a, ByteBuffer b, int at, int bytes) {
        int i = Math.min(bytes, SECTOR);
        boolean differ = differ(a, b, at, i);
        while (i < bytes) {
            int len = Math.min(bytes - i, SECTOR);
            if (differ(a, b, at + i, len) != differ) {
                break;
            }
            i += len;
        }
        return differ ? -i : i;
    }

    private static boolean differ(ByteBuffer a, ByteBuffer b, int at, int len) {
        return a.slice(at, len).mismatch(b.slice(at, len)) >= 0;
    }

    private static void zero(ByteBuffer buf, int n) {
        Arrays.fill(buf.array(), 0, n, (byte) 0);
    }

    /** bdrv_change_backing_file and qemu-img's wording of its errors; false once reported. */
    private static boolean changeBacking(ImgContext ctx, Progress meter, BlockNode top, String backing,
                                         String format, String asGiven) {
        boolean ok = true;
        try {
            if (backing != null && format == null) {
                // QEMU insists on a format for every new backing file name it records.
                throw new BlockException(Errno.EINVAL, Errno.EINVAL.text());
            }
            top.changeBackingFile(backing, format);
        } catch (BlockException e) {
            String shown = asGiven == null ? "(null)" : asGiven;
            if (e.errno() == Errno.ENOSPC) {
                ctx.error("Could not change the backing file to '" + shown + "': No space left in the file header");
            } else if (e.errno() == Errno.EINVAL && asGiven != null && format == null && backing != null) {
                ctx.error("Could not change the backing file to '" + shown + "': backing format must be specified");
            } else {
                ctx.error("Could not change the backing file to '" + shown + "': " + e.errno().text());
            }
            ok = false;
        }
        meter.print(100, 0);
        return ok;
    }
}
