package io.jblock.filter.logwrites;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Rebuilds, from a write log, what the disk under the logged node held at a
 * chosen point: the image as a power cut at that point may leave it.
 *
 * <p>A plan replays the first {@code to} entries. With a seed it also models
 * what a power cut loses: the writes, zero writes and discards after the last
 * flush before the cut, other than those with FUA, were acknowledged but not
 * yet durable, so each of them is dropped with probability 1/2 (a drive's
 * cache may write back any subset, in any order). A flush makes everything
 * logged before it durable, and a FUA write is durable by itself, so neither
 * is ever dropped. Torn writes (part of one request) are not modelled.
 *
 * <p>Replay writes at the logged offsets, in log order: data for writes,
 * zeroes for zero writes and for discards (a file node punches a hole, which
 * reads as zeroes). The target must start as the file was when the log began.
 */
public final class LogReplay {
    private LogReplay() {
    }

    /**
     * What to replay.
     *
     * @param to        how many entries, from the first
     * @param applied   the entries written, in order
     * @param dropped   the unflushed entries left out (empty without a seed)
     * @param lastFlush the index of the last flush before {@code to}, -1 for none
     */
    public record Plan(int to, List<LogEntry> applied, List<LogEntry> dropped, long lastFlush) {
    }

    /** The indexes of the flush entries: the flush points, in order. */
    public static List<Long> flushPoints(WriteLog.Contents log) {
        List<Long> points = new ArrayList<>();
        for (LogEntry e : log.entries()) {
            if (e.isFlush()) {
                points.add(e.index());
            }
        }
        return points;
    }

    /**
     * The plan for a cut after {@code to} entries; with {@code seed} non-null,
     * a random subset of the unflushed, non-FUA changes is dropped.
     */
    public static Plan plan(WriteLog.Contents log, long to, Long seed) throws BlockException {
        int count = log.entries().size();
        if (to < 0 || to > count) {
            throw new BlockException(Errno.EINVAL, "entry " + to + " is out of range: the log has " + count
                    + " entries, so --to takes 0 to " + count);
        }
        long lastFlush = -1;
        for (int i = 0; i < to; i++) {
            if (log.entries().get(i).isFlush()) {
                lastFlush = i;
            }
        }
        Random random = seed == null ? null : new Random(seed);
        List<LogEntry> applied = new ArrayList<>();
        List<LogEntry> dropped = new ArrayList<>();
        for (int i = 0; i < to; i++) {
            LogEntry e = log.entries().get(i);
            if (e.isFlush() || e.isMark()) {
                continue;
            }
            if (random != null && i > lastFlush && !e.isFua() && random.nextBoolean()) {
                dropped.add(e);
            } else {
                applied.add(e);
            }
        }
        return new Plan((int) to, List.copyOf(applied), List.copyOf(dropped), lastFlush);
    }

    /** Writes the plan's entries into {@code target} (created if missing), reading data from {@code logPath}. */
    public static void apply(Path logPath, WriteLog.Contents log, Plan plan, Path target) throws BlockException {
        int ss = log.sectorSize();
        try (FileChannel in = FileChannel.open(logPath, StandardOpenOption.READ);
             FileChannel out = FileChannel.open(target, StandardOpenOption.WRITE, StandardOpenOption.CREATE)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            for (LogEntry e : plan.applied()) {
                long offset = e.sector() * ss;
                long length = e.sectors() * ss;
                boolean zero = e.isDiscard();
                for (long done = 0; done < length; ) {
                    int n = (int) Math.min(buf.capacity(), length - done);
                    buf.clear().limit(n);
                    if (zero) {
                        java.util.Arrays.fill(buf.array(), 0, n, (byte) 0);
                    } else {
                        while (buf.hasRemaining()) {
                            if (in.read(buf, e.dataOffset() + done + buf.position()) < 0) {
                                throw new BlockException(Errno.EINVAL, "'" + logPath + "' is truncated in the data of entry "
                                        + e.index());
                            }
                        }
                        buf.flip();
                    }
                    buf.position(0).limit(n);
                    while (buf.hasRemaining()) {
                        out.write(buf, offset + done + buf.position());
                    }
                    done += n;
                }
            }
        } catch (IOException ex) {
            throw BlockException.io("Could not replay '" + logPath + "' into '" + target + "'", ex);
        }
    }
}
