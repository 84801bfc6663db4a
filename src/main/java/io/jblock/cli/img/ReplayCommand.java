package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.filter.logwrites.LogEntry;
import io.jblock.filter.logwrites.LogReplay;
import io.jblock.filter.logwrites.WriteLog;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * {@code jblock img replay}: a jblock extension (qemu-img has no such
 * command). Reads a write log made by the logwrites filter
 * ({@code driver=blklogwrites}) and lists it, or rebuilds the image as the
 * disk held it at a chosen entry, optionally dropping a random subset of the
 * writes a power cut may lose.
 *
 * <pre>
 * replay --list LOG
 * replay --to N [--drop-unflushed SEED] LOG TARGET
 * </pre>
 */
final class ReplayCommand implements ImgCommand {
    static final String USAGE = """
            usage: %1$s replay --list LOG
                   %1$s replay --to N [--drop-unflushed SEED] LOG TARGET

            Replays a write log (dm-log-writes format, as written by driver=blklogwrites).
              --list                  list the entries, with their flush/FUA/discard marks
                                      and the flush points numbered from 1
              --to N                  replay the first N entries (0 to the number of entries)
                                      into TARGET, which must start as the logged file was
                                      when the log began (it is created if missing)
              --drop-unflushed SEED   also drop a random subset (seeded) of the writes,
                                      zero writes and discards since the last flush before N,
                                      except FUA writes, as a power cut may
            """;

    private static final int LIST = 'l';
    private static final int TO = 't';
    private static final int DROP = 'd';
    private static final int HELP = 'h';

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        CommandLine cl = new CommandLine(ctx, args, "h", CommandLine.flag("list", LIST),
                CommandLine.withArgument("to", TO), CommandLine.withArgument("drop-unflushed", DROP),
                CommandLine.flag("help", HELP));
        boolean list = false;
        String to = null;
        String seed = null;
        for (int c; (c = cl.next()) != -1; ) {
            switch (c) {
                case LIST -> list = true;
                case TO -> to = cl.optarg();
                case DROP -> seed = cl.optarg();
                case HELP -> {
                    ctx.out().print(USAGE.formatted(ctx.prog()));
                    return 0;
                }
                default -> throw new IllegalStateException("option " + (char) c);
            }
        }
        List<String> operands = cl.operands();
        if (list) {
            if (to != null || seed != null) {
                throw ctx.usageError("replay: --list takes no --to or --drop-unflushed");
            }
            if (operands.size() != 1) {
                throw ctx.usageError("replay: --list takes one LOG");
            }
            return list(ctx, Path.of(operands.get(0)));
        }
        if (to == null) {
            throw ctx.usageError("replay: give --list, or --to N with LOG and TARGET");
        }
        if (operands.size() != 2) {
            throw ctx.usageError("replay: --to takes LOG and TARGET");
        }
        long n = number(ctx, "--to", to);
        Long s = seed == null ? null : number(ctx, "--drop-unflushed", seed);
        return replay(ctx, Path.of(operands.get(0)), Path.of(operands.get(1)), n, s);
    }

    private static long number(ImgContext ctx, String option, String text) throws ImgExit {
        try {
            return Long.parseLong(text);
        } catch (NumberFormatException e) {
            throw ctx.fail("replay: " + option + " expects a whole number, not '" + text + "'");
        }
    }

    private static int list(ImgContext ctx, Path logPath) throws ImgExit {
        WriteLog.Contents log = read(ctx, logPath);
        List<Long> flushes = LogReplay.flushPoints(log);
        StringBuilder sb = new StringBuilder();
        sb.append("Log '").append(logPath).append("': ").append(log.entries().size()).append(" entries, ")
                .append(flushes.size()).append(" flush points, sector size ").append(log.sectorSize()).append('\n');
        int flushNo = 0;
        for (LogEntry e : log.entries()) {
            long offset = e.sector() * log.sectorSize();
            long length = e.sectors() * log.sectorSize();
            sb.append(String.format("%6d  ", e.index()));
            if (e.isFlush()) {
                sb.append(String.format("%-8s", "flush")).append("flush point ").append(++flushNo);
            } else if (e.isMark()) {
                sb.append("mark");
            } else {
                sb.append(String.format("%-8s", e.isDiscard() ? "discard" : "write"))
                        .append("offset ").append(offset).append(" length ").append(length);
                if (e.isFua()) {
                    sb.append(" FUA");
                }
            }
            sb.append('\n');
        }
        ctx.out().print(sb);
        return 0;
    }

    private static int replay(ImgContext ctx, Path logPath, Path target, long to, Long seed) throws ImgExit {
        WriteLog.Contents log = read(ctx, logPath);
        LogReplay.Plan plan;
        try {
            plan = LogReplay.plan(log, to, seed);
            LogReplay.apply(logPath, log, plan, target);
        } catch (BlockException e) {
            throw ctx.fail("replay: " + e.getMessage());
        }
        if (seed != null) {
            long unflushed = plan.applied().stream().filter(e -> e.index() > plan.lastFlush()).count()
                    + plan.dropped().size();
            String which = plan.dropped().isEmpty() ? "none"
                    : "entries " + plan.dropped().stream().map(e -> Long.toString(e.index()))
                    .collect(Collectors.joining(", "));
            ctx.out().print("Seed " + seed + ": dropped " + plan.dropped().size() + " of " + unflushed
                    + " changes after the last flush (" + (plan.lastFlush() < 0 ? "none" : "entry " + plan.lastFlush())
                    + "): " + which + "\n");
        }
        ctx.out().print("Replayed " + plan.applied().size() + " changes of the first " + plan.to() + " entries (of "
                + log.entries().size() + ") into '" + target + "'\n");
        return 0;
    }

    private static WriteLog.Contents read(ImgContext ctx, Path logPath) throws ImgExit {
        try {
            return WriteLog.read(logPath);
        } catch (BlockException e) {
            throw ctx.fail("replay: " + e.getMessage());
        }
    }
}
