package io.jblock.cli.img;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.CacheMode;
import io.jblock.block.Choice;
import io.jblock.block.Drive;
import io.jblock.block.QemuSizes;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval]
 * [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q]
 * [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] [--image-opts] filename}.
 *
 * <p>Issues {@code count} reads (or writes of the pattern byte with -w) of
 * {@code buffer_size} bytes, keeping {@code depth} of them in flight, and
 * prints how long the run took. Each request in flight has a thread of its
 * own: a virtual one, which parks while a ring engine works, as a coroutine
 * of QEMU's AIO does, or with aio=threads a platform one that blocks in the
 * system call, as a worker of QEMU's thread pool does (see
 * {@link #requestThreads}); {@link BenchSchedule} decides the offsets and the flushes.
 *
 * <p>As qemu-img 7.2: -n selects native AIO (it does not mean cache=none
 * here), -q changes nothing in the output, and there is no --object.
 * Two cases where qemu-img misbehaves fail clearly instead: a depth of 0
 * with requests to send (qemu-img waits forever) and an empty image
 * (qemu-img dies of a division by zero).
 */
final class BenchCommand implements ImgCommand {
    private static final int OPTION_FLUSH_INTERVAL = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    private static final int OPTION_PATTERN = 258;
    private static final int OPTION_NO_DRAIN = 259;
    /** Buffers are aligned for O_DIRECT, as blk_blockalign does. */
    private static final long BUFFER_ALIGNMENT = 4096;

    /** What the command line asked for. */
    private static final class Options {
        int count = 75000;
        int depth = 64;
        String fmt;
        long offset;
        int bufferSize = 4096;
        int pattern;
        int step;
        int flushInterval;
        boolean drain = true;
        boolean write;
        boolean imageOpts;
        boolean forceShare;
        boolean nativeAio;
        AioMode aio;
        CacheMode cache = CacheMode.WRITEBACK;
    }

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        Options o = new Options();
        CommandLine cl = new CommandLine(ctx, args, "hc:d:f:ni:o:qs:S:t:wU", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("flush-interval", OPTION_FLUSH_INTERVAL),
                CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.withArgument("pattern", OPTION_PATTERN),
                CommandLine.flag("no-drain", OPTION_NO_DRAIN), CommandLine.flag("force-share", 'U'));
        int c;
        while ((c = cl.next()) != -1) {
            String arg = cl.optarg();
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'c' -> o.count = intArgument(ctx, arg, "Invalid request count specified");
                case 'd' -> o.depth = intArgument(ctx, arg, "Invalid queue depth specified");
                case 'f' -> o.fmt = arg;
                case 'n' -> o.nativeAio = true;
                case 'i' -> o.aio = Choice.parse(AioMode.class, arg)
                        .orElseThrow(() -> ctx.fail("Invalid aio option: " + arg));
                case 'o' -> o.offset = SizeArgument.parse(ctx, "offset", arg);
                case 'q' -> { } // qemu-img 7.2 prints the same with and without -q
                case 's' -> o.bufferSize = (int) boundedSize(ctx, "buffer size", arg);
                case 'S' -> o.step = (int) boundedSize(ctx, "step_size", arg);
                case 't' -> o.cache = qemuCacheMode(arg).orElseThrow(() -> ctx.fail("Invalid cache mode"));
                case 'w' -> o.write = true;
                case 'U' -> o.forceShare = true;
                case OPTION_PATTERN -> o.pattern = unsigned(arg, 0xff, ctx, "Invalid pattern byte specified");
                case OPTION_FLUSH_INTERVAL -> o.flushInterval = intArgument(ctx, arg,
                        "Invalid flush interval specified");
                case OPTION_NO_DRAIN -> o.drain = false;
                case OPTION_IMAGE_OPTS -> o.imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (cl.operands().size() != 1) {
            throw ctx.usageError("Expecting one image file name");
        }
        if (!o.write && o.flushInterval != 0) {
            throw ctx.fail("--flush-interval is only available in write tests");
        }
        if (o.flushInterval != 0 && o.flushInterval < o.depth) {
            throw ctx.fail("Flush interval can't be smaller than depth");
        }
        if (o.depth == 0 && o.count > 0) {
            // qemu-img 7.2 accepts this and then waits forever for requests it never sends.
            throw ctx.fail("Invalid queue depth specified");
        }
        return bench(ctx, o, cl.operands().getFirst());
    }

    private static int bench(ImgContext ctx, Options o, String filename) throws ImgExit {
        AioMode aio = o.aio != null ? o.aio : o.nativeAio ? AioMode.NATIVE : AioMode.THREADS;
        ImageOpener.Request request = new ImageOpener.Request(filename, o.fmt, o.imageOpts, !o.write, o.forceShare);
        try (ImageOpener.Opened image = ImageOpener.open(ctx, request, dc -> {
            dc.cache = o.cache.options();
            dc.aio = aio;
            dc.warnings = w -> warn(ctx, w);
        })) {
            Drive drive = image.drive();
            long imageSize = sectors(drive.length());
            int step = o.step != 0 ? o.step : o.bufferSize;
            ctx.out().print("Sending " + o.count + " " + (o.write ? "write" : "read") + " requests, " + o.bufferSize
                    + " bytes each, " + o.depth + " in parallel (starting at offset " + o.offset + ", step size "
                    + step + ")\n");
            if (o.flushInterval != 0) {
                ctx.out().print("Sending flush every " + o.flushInterval + " requests\n");
            }
            ctx.out().flush();
            BenchSchedule schedule = new BenchSchedule(o.count, o.offset, step, imageSize, o.flushInterval,
                    o.drain);
            long elapsed = run(ctx, drive, schedule, o, aio);
            ctx.out().print(String.format(Locale.ROOT, "Run completed in %3.3f seconds.\n", elapsed / 1e9));
            return 0;
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    /** Runs the requests on min(depth, count) virtual threads; returns the nanoseconds they took. */
    private static long run(ImgContext ctx, Drive drive, BenchSchedule schedule, Options o, AioMode aio)
            throws ImgExit {
        int workers = Math.min(o.depth, o.count);
        BenchFailure failure = new BenchFailure(schedule);
        List<Thread> threads = new ArrayList<>(workers);
        try (Arena arena = Arena.ofShared()) {
            List<ByteBuffer> buffers = new ArrayList<>(workers);
            for (int i = 0; i < workers; i++) {
                MemorySegment seg = arena.allocate(Math.max(o.bufferSize, 1), BUFFER_ALIGNMENT);
                seg.fill((byte) o.pattern);
                buffers.add(seg.asSlice(0, o.bufferSize).asByteBuffer());
            }
            long start = System.nanoTime();
            for (int i = 0; i < workers; i++) {
                ByteBuffer buf = buffers.get(i);
                threads.add(requestThreads(aio).name("bench-" + i).start(
                        () -> work(drive, schedule, buf, o.write, failure)));
            }
            joinAll(threads);
            long elapsed = System.nanoTime() - start;
            failure.awaitFlushes();
            if (failure.message() != null) {
                throw ctx.fail(failure.message());
            }
            return elapsed;
        }
    }

    /**
     * The threads the request slots run on. With aio=threads every request
     * blocks its thread in a system call, so each slot gets a platform thread
     * of its own, as each request gets a worker of QEMU's thread pool: on a
     * virtual thread every such call would have the JDK wake a spare carrier
     * to stand in for the blocked one, a hand-off per request, and after a
     * shared flush the 32 writers would start their next writes one carrier
     * wake-up after another. The ring engines park their threads without
     * blocking a carrier, so they keep virtual threads.
     */
    private static Thread.Builder requestThreads(AioMode aio) {
        return aio == AioMode.THREADS ? Thread.ofPlatform().daemon() : Thread.ofVirtual();
    }

    /** One request slot: issue, wait, report, until the schedule has nothing left. */
    private static void work(Drive drive, BenchSchedule schedule, ByteBuffer buf, boolean write,
            BenchFailure failure) {
        long offset;
        while ((offset = schedule.next()) >= 0) {
            buf.clear();
            try {
                if (write) {
                    drive.write(offset, buf, 0);
                } else {
                    drive.read(offset, buf);
                }
            } catch (BlockException e) {
                failure.request(e);
                return;
            }
            switch (schedule.completed()) {
                case NOTHING -> { }
                case DRAINED_FLUSH -> {
                    try {
                        drive.flush();
                    } catch (BlockException e) {
                        failure.request(e);
                        return;
                    } finally {
                        schedule.flushDone();
                    }
                }
                case UNDRAINED_FLUSH -> failure.flushBeside(drive);
            }
        }
    }

    private static void joinAll(List<Thread> threads) {
        boolean interrupted = false;
        for (Thread t : threads) {
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** QEMU's block layer counts in 512-byte sectors: a raw file's length is rounded up. */
    private static long sectors(long length) {
        return (length + 511) / 512 * 512;
    }

    /** QEMU's probing warning is printed as it is; other warnings get the "prog: warning: " prefix. */
    private static void warn(ImgContext ctx, String w) {
        if (w.startsWith("WARNING: ")) {
            ctx.err().print(w + "\n");
        } else {
            ctx.warn(w);
        }
    }

    /** bdrv_parse_cache_mode's spellings (jblock's "volatile" is not one of them). */
    private static java.util.Optional<CacheMode> qemuCacheMode(String text) {
        if ("volatile".equals(text)) {
            return java.util.Optional.empty();
        }
        return Choice.parse(CacheMode.class, text);
    }

    private static int intArgument(ImgContext ctx, String text, String message) throws ImgExit {
        return unsigned(text, Integer.MAX_VALUE, ctx, message);
    }

    /** qemu_strtoul(text, NULL, 0, &res) with res at most {@code max}: C's strtoul over the whole string. */
    private static int unsigned(String text, long max, ImgContext ctx, String message) throws ImgExit {
        QemuSizes.CInteger p = QemuSizes.strtoull(text, 0);
        if (p.end() == 0 || p.end() != text.length() || p.overflows()) {
            throw ctx.fail(message);
        }
        // strtoul negates in unsigned arithmetic: "-0" is 0, any other negative number is huge.
        if (p.negative() && p.magnitude().signum() != 0) {
            throw ctx.fail(message);
        }
        if (p.magnitude().compareTo(java.math.BigInteger.valueOf(max)) > 0) {
            throw ctx.fail(message);
        }
        return p.magnitude().intValue();
    }

    /** cvtnum_full(name, text, 0, INT_MAX): a size with suffixes, at most INT_MAX. */
    private static long boundedSize(ImgContext ctx, String what, String text) throws ImgExit {
        QemuSize.Result r = QemuSize.parse(text, ctx::warn);
        if (r.failure() == QemuSize.Failure.INVALID) {
            ctx.error("Invalid " + what + " specified. You may use k, M, G, T, P or E suffixes for");
            ctx.error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
            throw new ImgExit(1);
        }
        if (r.failure() == QemuSize.Failure.OUT_OF_RANGE || r.value() < 0 || r.value() > Integer.MAX_VALUE) {
            throw ctx.fail("Invalid " + what + " specified. Must be between 0 and " + Integer.MAX_VALUE + ".");
        }
        return r.value();
    }
}
