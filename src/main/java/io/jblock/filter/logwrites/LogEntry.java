package io.jblock.filter.logwrites;

/**
 * One entry of a write log, as read back: what reached the file node, in the
 * order it completed.
 *
 * @param index      the entry's number, from 0
 * @param sector     first sector written, in log sectors
 * @param sectors    how many sectors
 * @param flags      {@link WriteLog#FLUSH}, {@link WriteLog#FUA}, {@link WriteLog#DISCARD}, ...
 * @param dataOffset where the entry's data starts in the log file (-1 for discards and flushes)
 */
public record LogEntry(long index, long sector, long sectors, long flags, long dataOffset) {
    public boolean isFlush() {
        return (flags & WriteLog.FLUSH) != 0;
    }

    public boolean isFua() {
        return (flags & WriteLog.FUA) != 0;
    }

    public boolean isDiscard() {
        return (flags & WriteLog.DISCARD) != 0;
    }

    public boolean isMark() {
        return (flags & WriteLog.MARK) != 0;
    }

    /** A write of data (not a discard, flush or mark). */
    public boolean isWrite() {
        return (flags & (WriteLog.FLUSH | WriteLog.DISCARD | WriteLog.MARK)) == 0;
    }
}
