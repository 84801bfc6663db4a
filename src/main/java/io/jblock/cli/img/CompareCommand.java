package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.CacheOptions;
import io.jblock.block.DiscardMode;
import io.jblock.options.CacheModes;

import java.nio.ByteBuffer;

/**
 * {@code compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U]
 * filename1 filename2}: whether two images read the same, as qemu-img 7.2
 * decides it. Block status skips runs both images know to be zero and
 * splits the rest; only what may differ is read, 2 MiB at a time.
 *
 * <p>Exit status, as qemu-img: 0 identical, 1 different (or, with -s, a
 * different size or block status), 2 a bad command line or an image that
 * does not open, 3 a block status that fails, 4 a read that fails. A
 * mismatch is reported at the start of the first differing 512-byte sector.
 */
final class CompareCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    static final int IO_BUF_SIZE = 2 << 20;
    private static final int SECTOR = 512;

    /** QEMU's BDRV_BLOCK_* bits, for the strict comparison of whole status words. */
    private static final int Q_DATA = 0x01;
    private static final int Q_ZERO = 0x02;
    private static final int Q_OFFSET_VALID = 0x04;
    private static final int Q_ALLOCATED = 0x10;
    private static final int Q_EOF = 0x20;

    private boolean quiet;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt1 = null;
        String fmt2 = null;
        String cache = "writeback";
        boolean progress = false;
        boolean strict = false;
        boolean imageOpts = false;
        boolean forceShare = false;
        CommandLine cl = new CommandLine(ctx, args, "hf:F:T:pqsU", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.flag("force-share", 'U'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> fmt1 = cl.optarg();
                case 'F' -> fmt2 = cl.optarg();
                case 'T' -> cache = cl.optarg();
                case 'p' -> progress = true;
                case 'q' -> quiet = true;
                case 's' -> strict = true;
                case 'U' -> forceShare = true;
                case OPTION_OBJECT -> {
                    ObjectOption.refuse(ctx, cl.optarg());
                    throw new ImgExit(2);
                }
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (quiet) {
            progress = false;
        }
        if (cl.operands().size() != 2) {
            throw ctx.usageError("Expecting two image file names");
        }
        String filename1 = cl.operands().get(0);
        String filename2 = cl.operands().get(1);
        Progress meter = new Progress(ctx.out(), progress, 2.0f);
        try {
            CacheOptions cacheOptions = CacheModes.parseQemu(cache).orElse(null);
            if (cacheOptions == null) {
                ctx.error("Invalid source cache option: " + cache);
                return 2;
            }
            ImageOpener.Tuning tuning = new ImageOpener.Tuning(cacheOptions, DiscardMode.IGNORE);
            try (ImageOpener.Opened one = openOrExit2(ctx, filename1, fmt1, imageOpts, forceShare, tuning);
                 ImageOpener.Opened two = openOrExit2(ctx, filename2, fmt2, imageOpts, forceShare, tuning)) {
                return compare(ctx, meter, strict, new Side(filename1, one.drive().root()),
                        new Side(filename2, two.drive().root()));
            } catch (BlockException e) {
                ctx.error(e.getMessage());
                return 2;
            }
        } finally {
            meter.end();
        }
    }

    private static ImageOpener.Opened openOrExit2(ImgContext ctx, String name, String fmt, boolean imageOpts,
                                                  boolean forceShare, ImageOpener.Tuning tuning) throws ImgExit {
        try {
            return ImageOpener.open(ctx, new ImageOpener.Request(name, fmt, imageOpts, true, forceShare), tuning);
        } catch (ImgExit e) {
            throw new ImgExit(2);
        }
    }

    /** One of the two images: its name for messages, its node and its length in whole sectors. */
    private record Side(String name, BlockNode node) {
        long length() throws BlockException {
            return SectorImage.length(node);
        }
    }

    /** What a read or status failure ends the command with, after its message. */
    private static final class Stop extends Exception {
        final int status;

        Stop(int status) {
            super(null, null, false, false);
            this.status = status;
        }
    }

    private int compare(ImgContext ctx, Progress meter, boolean strict, Side one, Side two) throws BlockException {
        long size1 = one.length();
        long size2 = two.length();
        long common = Math.min(size1, size2);
        long progressBase = Math.max(size1, size2);
        meter.print(0, 100);
        if (strict && size1 != size2) {
            say(ctx, "Strict mode: Image size mismatch!\n");
            return 1;
        }
        ByteBuffer buf1 = ConvertJob.pageAligned(IO_BUF_SIZE);
        ByteBuffer buf2 = ConvertJob.pageAligned(IO_BUF_SIZE);
        long offset = 0;
        try {
            while (offset < common) {
                BlockStatus s1 = status(ctx, one, offset, size1);
                BlockStatus s2 = status(ctx, two, offset, size2);
                long chunk = Math.min(s1.length(), s2.length());
                if (strict && word(s1, offset, size1) != word(s2, offset, size2)) {
                    say(ctx, "Strict mode: Offset " + offset + " block status mismatch!\n");
                    return 1;
                }
                if (s1.isZero() && s2.isZero()) {
                    // Both read as zero: nothing to read.
                } else if (inChain(s1) == inChain(s2)) {
                    if (inChain(s1)) {
                        chunk = Math.min(chunk, IO_BUF_SIZE);
                        read(ctx, one, offset, buf1, (int) chunk);
                        read(ctx, two, offset, buf2, (int) chunk);
                        long at = firstDifferentSector(buf1, buf2, (int) chunk);
                        if (at >= 0) {
                            say(ctx, "Content mismatch at offset " + (offset + at) + "!\n");
                            return 1;
                        }
                    }
                } else {
                    chunk = Math.min(chunk, IO_BUF_SIZE);
                    if (!checkEmpty(ctx, inChain(s1) ? one : two, offset, (int) chunk, buf1)) {
                        return 1;
                    }
                }
                offset += chunk;
                meter.print((float) chunk / progressBase * 100, 100);
            }
            if (size1 != size2) {
                say(ctx, "Warning: Image size mismatch!\n");
                Side over = size1 > size2 ? one : two;
                while (offset < progressBase) {
                    BlockStatus s = status(ctx, over, offset, progressBase);
                    long chunk = s.length();
                    if (inChain(s) && !s.isZero()) {
                        chunk = Math.min(chunk, IO_BUF_SIZE);
                        if (!checkEmpty(ctx, over, offset, (int) chunk, buf1)) {
                            return 1;
                        }
                    }
                    offset += chunk;
                    meter.print((float) chunk / progressBase * 100, 100);
                }
            }
        } catch (Stop e) {
            return e.status;
        }
        say(ctx, "Images are identical.\n");
        return 0;
    }

    private void say(ImgContext ctx, String text) {
        if (!quiet) {
            ctx.out().print(text);
        }
    }

    private static BlockStatus status(ImgContext ctx, Side side, long offset, long size) throws Stop {
        try {
            return SectorImage.status(side.node(), offset, size - offset);
        } catch (BlockException e) {
            ctx.error("Sector allocation test failed for " + side.name());
            throw new Stop(3);
        }
    }

    /**
     * QEMU's "allocated" for a whole chain (bdrv_block_status_above): some
     * layer has the bytes, not necessarily the top one.
     */
    static boolean inChain(BlockStatus s) {
        return s.depth() != 0;
    }

    /** The status as QEMU's block-status word, which strict mode compares whole. */
    private static int word(BlockStatus s, long offset, long size) {
        int w = 0;
        if (s.isData()) {
            w |= Q_DATA;
        }
        if (s.isZero()) {
            w |= Q_ZERO;
        }
        if (s.hasHostOffset()) {
            w |= Q_OFFSET_VALID;
        }
        if (inChain(s)) {
            w |= Q_ALLOCATED;
        }
        if (offset + s.length() == size) {
            w |= Q_EOF;
        }
        return w;
    }

    private static void read(ImgContext ctx, Side side, long offset, ByteBuffer buf, int length) throws Stop {
        buf.clear().limit(length);
        try {
            side.node().read(offset, buf);
        } catch (BlockException e) {
            ctx.error("Error while reading offset " + offset + " of " + side.name() + ": " + e.errno().text());
            throw new Stop(4);
        }
        buf.flip();
    }

    /** Whether the bytes read as zero; prints where they do not (QEMU's check_empty_sectors). */
    private boolean checkEmpty(ImgContext ctx, Side side, long offset, int length, ByteBuffer buf) throws Stop {
        read(ctx, side, offset, buf, length);
        long at = firstNonZeroSector(buf, length);
        if (at >= 0) {
            say(ctx, "Content mismatch at offset " + (offset + at) + "!\n");
            return false;
        }
        return true;
    }

    /** The start of the first 512-byte sector (relative) that holds a non-zero byte, or -1. */
    static long firstNonZeroSector(ByteBuffer buf, int length) {
        for (int i = 0; i < length; i += SECTOR) {
            int end = Math.min(length, i + SECTOR);
            for (int j = i; j < end; j++) {
                if (buf.get(j) != 0) {
                    return i;
                }
            }
        }
        return -1;
    }

    /**
     * Where the first sector that differs starts (relative), or -1 when all
     * {@code length} bytes match (qemu-img's compare_buffers, as its caller reads it).
     */
    static long firstDifferentSector(ByteBuffer a, ByteBuffer b, int length) {
        for (int i = 0; i < length; i += SECTOR) {
            int n = Math.min(SECTOR, length - i);
            if (a.slice(i, n).mismatch(b.slice(i, n)) >= 0) {
                return i;
            }
        }
        return -1;
    }
}
