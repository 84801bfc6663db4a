package io.jblock.cli.img;

import io.jblock.options.ImageUse;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.CacheOptions;
import io.jblock.block.DiscardMode;
import io.jblock.options.CacheModes;
import io.jblock.options.DriveOpener;
import io.jblock.options.KeyValueParser;
import io.jblock.protocol.FileDriver;
import io.jblock.protocol.FileNode;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code convert [--object objectdef] [--image-opts] [--target-image-opts] [--target-is-zero] [--bitmaps]
 * [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt]
 * [-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] [-S sparse_size] [-r rate_limit]
 * [-m num_coroutines] [-W] [--salvage] filename [filename2 [...]] output_filename}.
 *
 * <p>The checks run in qemu-img 7.2's order (which error a doubly wrong
 * command line gets is part of the behaviour): the option loop, the pairs
 * of options that exclude each other, -o help, the source cache mode, the
 * sources, the target's format, protocol and options, backing and
 * compression, the creation, the target cache mode, the target; then
 * {@link ConvertJob} copies.
 *
 * <p>Durability: the target's cache mode defaults to unsafe, as qemu-img's,
 * so the copy pays for no flush; unlike qemu-img (which then never calls
 * fdatasync), jblock ends with one real flush ({@link DurableFlush}). An
 * explicit {@code -t unsafe} keeps qemu-img's behaviour: no fdatasync.
 */
final class ConvertCommand implements ImgCommand {
    /** With the default cache, the target is asked to start writing back every this many bytes copied. */
    private static final long WRITEBACK_STEP = 16L << 20;
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    private static final int OPTION_TARGET_IMAGE_OPTS = 258;
    private static final int OPTION_SALVAGE = 259;
    private static final int OPTION_TARGET_IS_ZERO = 260;
    private static final int OPTION_BITMAPS = 261;
    private static final int OPTION_SKIP_BROKEN = 262;
    private static final int MAX_COROUTINES = 16;
    /** The largest -S, and the largest data chunk: 16 MiB. */
    private static final int MAX_BUF_SECTORS = 32768;
    private static final int SECTOR = 512;

    private final DriveOpener targetOpener;

    ConvertCommand() {
        this(null);
    }

    /** @param targetOpener opens the target (tests count its fdatasyncs); null for the standard one */
    ConvertCommand(DriveOpener targetOpener) {
        this.targetOpener = targetOpener;
    }

    /** The command line, as parsed. */
    private static final class Args {
        String fmt;
        String outFmt;
        String cache;
        String srcCache = "writeback";
        String outBaseImg;
        String backingFmt;
        String options;
        String snapshotName;
        boolean snapshotParam;
        SnapshotParam snapshot;
        boolean imageOpts;
        boolean targetImageOpts;
        boolean skipCreate;
        boolean progress;
        boolean quiet;
        boolean compressed;
        boolean copyRange;
        boolean salvage;
        boolean targetIsZero;
        boolean bitmaps;
        boolean skipBroken;
        boolean forceShare;
        boolean inOrder = true;
        boolean explicitMinSparse;
        int minSparse = 8;
        int workers = 8;
        long rateLimit;
        List<String> operands;
    }

    @Override
    public int run(ImgContext ctx, String[] argv) throws ImgExit {
        Args a = parse(ctx, argv);
        return convert(ctx, a, a.operands);
    }

    private Args parse(ImgContext ctx, String[] argv) throws ImgExit {
        Args a = new Args();
        CommandLine cl = new CommandLine(ctx, argv, "hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:",
                CommandLine.flag("help", 'h'), CommandLine.withArgument("object", OPTION_OBJECT),
                CommandLine.flag("image-opts", OPTION_IMAGE_OPTS), CommandLine.flag("force-share", 'U'),
                CommandLine.flag("target-image-opts", OPTION_TARGET_IMAGE_OPTS),
                CommandLine.flag("salvage", OPTION_SALVAGE), CommandLine.flag("target-is-zero", OPTION_TARGET_IS_ZERO),
                CommandLine.flag("bitmaps", OPTION_BITMAPS),
                CommandLine.flag("skip-broken-bitmaps", OPTION_SKIP_BROKEN));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> a.fmt = cl.optarg();
                case 'O' -> a.outFmt = cl.optarg();
                case 'B' -> a.outBaseImg = cl.optarg();
                case 'F' -> a.backingFmt = cl.optarg();
                case 'C' -> a.copyRange = true;
                case 'c' -> a.compressed = true;
                case 'o' -> {
                    if (!CreateOptions.isValidList(cl.optarg())) {
                        throw ctx.fail("Invalid option list: " + cl.optarg());
                    }
                    a.options = a.options == null ? cl.optarg() : a.options + "," + cl.optarg();
                }
                case 'l' -> {
                    if (cl.optarg().startsWith("snapshot.")) {
                        a.snapshotParam = true;
                    }
                    a.snapshot = SnapshotParam.parse(ctx, cl.optarg());
                    a.snapshotName = cl.optarg();
                }
                case 'S' -> {
                    long v = SizeArgument.parse(ctx, "buffer size for sparse output", cl.optarg());
                    if (v % SECTOR != 0 || v / SECTOR > MAX_BUF_SECTORS) {
                        throw ctx.fail("Invalid buffer size for sparse output specified. Valid sizes are multiples"
                                + " of " + SECTOR + " up to " + (long) MAX_BUF_SECTORS * SECTOR + ". Select 0 to"
                                + " disable sparse detection (fully allocates output).");
                    }
                    a.minSparse = (int) (v / SECTOR);
                    a.explicitMinSparse = true;
                }
                case 'p' -> a.progress = true;
                case 't' -> a.cache = cl.optarg();
                case 'T' -> a.srcCache = cl.optarg();
                case 'q' -> a.quiet = true;
                case 'n' -> a.skipCreate = true;
                case 'm' -> a.workers = coroutines(ctx, cl.optarg());
                case 'W' -> a.inOrder = false;
                case 'U' -> a.forceShare = true;
                case 'r' -> a.rateLimit = SizeArgument.parse(ctx, "rate limit", cl.optarg());
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> a.imageOpts = true;
                case OPTION_TARGET_IMAGE_OPTS -> a.targetImageOpts = true;
                case OPTION_SALVAGE -> a.salvage = true;
                case OPTION_TARGET_IS_ZERO -> a.targetIsZero = true;
                case OPTION_BITMAPS -> a.bitmaps = true;
                case OPTION_SKIP_BROKEN -> a.skipBroken = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        a.operands = cl.operands();
        return a;
    }

    /** qemu-img's -m: qemu_strtol with base 0, then 1..16. */
    private static int coroutines(ImgContext ctx, String text) throws ImgExit {
        long n;
        try {
            n = strtol(text);
        } catch (NumberFormatException e) {
            n = -1;
        }
        if (n < 1 || n > MAX_COROUTINES) {
            throw ctx.fail("Invalid number of coroutines. Allowed number of coroutines is between 1 and "
                    + MAX_COROUTINES);
        }
        return (int) n;
    }

    /**
     * C's strtol with base 0 over the whole string (qemu_strtol without an
     * end pointer): blanks, a sign, then hex (0x), octal (0) or decimal.
     */
    static long strtol(String text) {
        String t = text.stripLeading();
        boolean negative = false;
        if (t.startsWith("+") || t.startsWith("-")) {
            negative = t.charAt(0) == '-';
            t = t.substring(1);
        }
        int radix = 10;
        if (t.length() > 1 && (t.startsWith("0x") || t.startsWith("0X"))) {
            radix = 16;
            t = t.substring(2);
        } else if (t.length() > 1 && t.startsWith("0")) {
            radix = 8;
            t = t.substring(1);
        }
        if (t.isEmpty() || t.charAt(0) == '+' || t.charAt(0) == '-') {
            throw new NumberFormatException(text);
        }
        long v = Long.parseLong(t, radix);
        return negative ? -v : v;
    }

    private int convert(ImgContext ctx, Args a, List<String> operands) throws ImgExit {
        if (a.outFmt == null && !a.targetImageOpts) {
            a.outFmt = "raw";
        }
        if (a.skipBroken && !a.bitmaps) {
            throw ctx.fail("Use of --skip-broken-bitmaps requires --bitmaps");
        }
        if (a.compressed && a.copyRange) {
            throw ctx.fail("Cannot enable copy offloading when -c is used");
        }
        if (a.explicitMinSparse && a.copyRange) {
            throw ctx.fail("Cannot enable copy offloading when -S is used");
        }
        if (a.copyRange && a.salvage) {
            throw ctx.fail("Cannot use copy offloading in salvaging mode");
        }
        if (a.targetImageOpts && !a.skipCreate) {
            throw ctx.fail("--target-image-opts requires use of -n flag");
        }
        if (a.skipCreate && a.options != null) {
            throw ctx.fail("-o has no effect when skipping image creation");
        }
        if (a.targetIsZero && !a.skipCreate) {
            throw ctx.fail("--target-is-zero requires use of -n flag");
        }
        int srcNum = operands.size() - 1;
        String outFilename = srcNum >= 1 ? operands.getLast() : null;
        if (a.options != null && KeyValueParser.hasHelpOption(a.options)) {
            if (a.outFmt == null) {
                throw ctx.fail("Option help requires a format be specified");
            }
            return ConvertTarget.printOptionHelp(ctx, outFilename, a.outFmt);
        }
        if (srcNum < 1) {
            throw ctx.fail("Must specify image file name");
        }
        CacheOptions srcCache = CacheModes.parseQemu(a.srcCache).orElse(null);
        if (srcCache == null) {
            throw ctx.fail("Invalid source cache option: " + a.srcCache);
        }
        if (a.quiet) {
            a.progress = false;
        }
        Progress progress = new Progress(ctx.out(), a.progress, 1.0f);
        progress.print(0, 100);
        List<ImageOpener.Opened> sources = new ArrayList<>();
        try {
            for (String name : operands.subList(0, srcNum)) {
                sources.add(ImageOpener.open(ctx, new ImageOpener.Request(name, a.fmt, a.imageOpts, true,
                        a.forceShare), new ImageOpener.Tuning(srcCache, DiscardMode.IGNORE).as(ImageUse.COPY_SOURCE)));
            }
            int status = convertOpened(ctx, a, sources, srcNum, outFilename, progress);
            if (status == 0) {
                progress.print(100, 0);
            }
            return status;
        } finally {
            for (ImageOpener.Opened o : sources) {
                try {
                    o.close();
                } catch (BlockException e) {
                    ctx.error(e.getMessage());
                }
            }
            progress.end();
        }
    }

    private int convertOpened(ImgContext ctx, Args a, List<ImageOpener.Opened> opened, int srcNum,
                              String outFilename, Progress progress) throws ImgExit {
        List<BlockNode> sources = opened.stream().map(o -> o.drive().root()).toList();
        long totalSectors = 0;
        for (BlockNode s : sources) {
            try {
                totalSectors += SectorImage.length(s) / SECTOR;
            } catch (BlockException e) {
                throw ctx.fail("Could not get size of " + s.nodeName() + ": " + e.errno().text());
            }
        }
        if (a.snapshotName != null) {
            if (!a.snapshotParam && srcNum > 1) {
                throw ctx.fail("No support for concatenating multiple snapshot");
            }
            a.snapshot.load(ctx, sources.getFirst());
        }
        ConvertTarget.Plan plan = null;
        if (!a.skipCreate) {
            plan = ConvertTarget.plan(ctx, a.outFmt, outFilename, a.options, totalSectors * SECTOR,
                    a.outBaseImg, a.backingFmt);
        }
        String outBaseImg = plan != null && plan.backingFile() != null ? plan.backingFile() : a.outBaseImg;
        boolean targetHasBacking = outBaseImg != null;
        if (a.targetIsZero && targetHasBacking) {
            // qemu-img 7.2 prints this and then exits with status 0 having done nothing;
            // a script would take that for a finished copy, so jblock fails.
            throw ctx.fail("Cannot use --target-is-zero when the destination image has a backing file");
        }
        if (srcNum > 1 && outBaseImg != null) {
            throw ctx.fail("Having a backing file for the target makes no sense when concatenating multiple"
                    + " input images");
        }
        if (plan != null && plan.backingFile() != null && plan.backingFormat() == null) {
            throw ctx.fail("Use of backing file requires explicit backing format");
        }
        if (a.compressed) {
            if (plan != null && !ConvertTarget.canCompress(a.outFmt)) {
                throw ctx.fail("Compression not supported for this file format");
            }
            if (plan != null && plan.preallocated()) {
                throw ctx.fail("Compression and preallocation not supported at the same time");
            }
        }
        if (a.bitmaps) {
            if (srcNum > 1) {
                throw ctx.fail("Copying bitmaps only possible with single source");
            }
            ConvertBitmaps.check(ctx, sources.getFirst(), a.skipBroken);
        }
        if (plan != null) {
            SourceGuard.refuseIfRead(ctx, sources, plan.path(), outFilename + ": error while converting "
                    + a.outFmt + ": ");
            ConvertTarget.create(ctx, plan);
        }
        boolean defaultCache = a.cache == null;
        String cacheName = defaultCache ? "unsafe" : a.cache;
        CacheOptions cache = CacheModes.parseQemu(cacheName).orElse(null);
        if (cache == null) {
            throw ctx.fail("Invalid cache option: " + cacheName);
        }
        if (a.skipCreate && !a.targetImageOpts) {
            String path = outFilename.startsWith("file:") ? outFilename.substring(5) : outFilename;
            SourceGuard.refuseIfRead(ctx, sources, path, "Could not open '" + outFilename + "': ");
        }
        DiscardMode discard = a.minSparse > 0 ? DiscardMode.UNMAP : DiscardMode.IGNORE;
        ImageOpener.Request request = a.skipCreate
                ? new ImageOpener.Request(outFilename, a.outFmt, a.targetImageOpts, false, false)
                : new ImageOpener.Request(outFilename, a.outFmt, false, false, false);
        try (ImageOpener.Opened target = ImageOpener.open(ctx, request,
                // As qemu-img: a target written with O_DIRECT may need its padded end cut back, so it takes the
                // resize permission (a qemu-nbd serving it refuses the convert).
                new ImageOpener.Tuning(cache, discard, targetOpener, cache.direct() ? ImageUse.RESIZE
                        : ImageUse.DEFAULT))) {
            BlockNode out = target.drive().root();
            if (a.bitmaps && !ConvertBitmaps.supported(out)) {
                throw ctx.fail("Format driver '" + out.driverName() + "' does not support bitmaps");
            }
            if (a.compressed && !ConvertTarget.canCompress(out.driverName())) {
                throw ctx.fail("Compression not supported for this file format");
            }
            int clusterSectors = 0;
            if (a.compressed) {
                clusterSectors = (int) (out.info().clusterSize() / SECTOR);
                if (clusterSectors <= 0) {
                    throw ctx.fail("Compression not supported for this file format");
                }
            }
            long outLength = SectorImage.length(out);
            if (a.skipCreate && outLength / SECTOR < totalSectors) {
                throw ctx.fail("output file is smaller than input file");
            }
            long targetBackingSectors = -1;
            BlockNode outBacking = out.child("backing");
            if (targetHasBacking && !a.skipCreate && outBacking != null) {
                targetBackingSectors = SectorImage.length(outBacking) / SECTOR;
            }
            boolean hasZeroInit = a.targetIsZero
                    || (!a.skipCreate && a.minSparse > 0 && !targetHasBacking && startsZeroed(out));
            int requestAlignment = out.capabilities().requestAlignment();
            int alignment = Math.max(Integer.highestOneBit(Math.max(a.minSparse, 1)),
                    (requestAlignment + SECTOR - 1) / SECTOR);
            ConvertJob.Settings settings = new ConvertJob.Settings(a.minSparse, hasZeroInit, targetHasBacking,
                    targetBackingSectors, a.inOrder, a.workers, a.copyRange, a.salvage, a.quiet, alignment,
                    CompareCommand.IO_BUF_SIZE / SECTOR, a.rateLimit, clusterSectors);
            try {
                ConvertJob job = new ConvertJob(ctx, sources, out, settings, progress);
                if (defaultCache || cacheName.equals("writeback")) { // both end with a real flush
                    job.startWritebackEvery(WRITEBACK_STEP);
                }
                job.run();
            } catch (ConvertJob.Failed e) {
                return 1;
            }
            if (a.compressed) {
                alignFileEnd(out);
            }
            if (a.bitmaps) {
                ConvertBitmaps.copy(ctx, sources.getFirst(), out, a.skipBroken);
            }
            if (defaultCache) {
                DurableFlush.flush(out);
            }
            return 0;
        } catch (BlockException e) {
            throw ctx.fail(outFilename + ": " + e.getMessage());
        }
    }

    /**
     * qemu-img convert -c ends with an empty compressed write, which makes
     * qcow2 extend its file to a whole number of 512-byte sectors ("to ease
     * reading with sector based I/Os"): compressed clusters end anywhere, and
     * the last one would leave the file's length unaligned.
     */
    private static void alignFileEnd(BlockNode target) throws BlockException {
        BlockNode file = target.driverName().equals("qcow2") ? target.child("file") : null;
        if (file == null) {
            return;
        }
        // As QEMU: a truncate to the length the file reports, which counts whole sectors.
        long aligned = (file.length() + SECTOR - 1) / SECTOR * SECTOR;
        file.truncate(aligned, false, io.jblock.block.Prealloc.OFF);
    }

    /**
     * QEMU's bdrv_has_zero_init for a target just created: a regular file
     * made by jblock reads as zero everywhere; a device may hold anything.
     */
    private static boolean startsZeroed(BlockNode target) {
        BlockNode n = target;
        while (n != null && !(n instanceof FileNode)) {
            n = n.child("file");
        }
        return n instanceof FileNode f && !FileDriver.isHostDevice(f.path().toString());
    }
}
