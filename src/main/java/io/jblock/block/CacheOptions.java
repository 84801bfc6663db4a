package io.jblock.block;

/**
 * The three independent settings a cache mode stands for.
 *
 * @param writeback the guest sees a volatile write cache; when off, the drive
 *                  makes every write FUA (writethrough)
 * @param direct    the file protocol opens with O_DIRECT (bypasses the host
 *                  page cache; still needs fdatasync to be durable)
 * @param noFlush   flushes stop at the OS: metadata caches are still written
 *                  to the file, but fdatasync is skipped and FUA is stripped
 */
public record CacheOptions(boolean writeback, boolean direct, boolean noFlush) {
    /**
     * cache=writeback, the default. Spelled out rather than taken from
     * CacheMode, whose constructor builds CacheOptions: reading CacheMode here
     * would make the two classes' initialisation depend on which comes first.
     */
    public static final CacheOptions WRITEBACK = new CacheOptions(true, false, false);

    /** The options with any of the explicit {@code cache.*} keys applied; null means "not given". */
    public CacheOptions override(Boolean writeback, Boolean direct, Boolean noFlush) {
        return new CacheOptions(
                writeback != null ? writeback : this.writeback,
                direct != null ? direct : this.direct,
                noFlush != null ? noFlush : this.noFlush);
    }
}
