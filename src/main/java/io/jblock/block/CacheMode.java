package io.jblock.block;

import java.util.List;

/**
 * The cache modes of {@code -drive cache=}, each a shortcut for three settings:
 *
 * <pre>
 *   cache=                   write cache   direct   no-flush
 *   writeback (default)      on            off      off
 *   writethrough             off           off      off
 *   none (alias off)         on            on       off
 *   directsync               off           on       off
 *   unsafe (alias volatile)  on            off      on
 * </pre>
 *
 * Spellings are matched exactly, case included, as QEMU's
 * bdrv_parse_cache_mode does. {@code volatile} is a jblock extension (the
 * name unsafe was first proposed under): QEMU 7.2 itself rejects it
 * ("invalid cache option"), so scripts written for QEMU never use it.
 */
public enum CacheMode implements Choice {
    WRITEBACK(List.of("writeback"), true, false, false),
    WRITETHROUGH(List.of("writethrough"), false, false, false),
    NONE(List.of("none", "off"), true, true, false),
    DIRECTSYNC(List.of("directsync"), false, true, false),
    UNSAFE(List.of("unsafe", "volatile"), true, false, true);

    private final List<String> names;
    private final CacheOptions options;

    CacheMode(List<String> names, boolean writeback, boolean direct, boolean noFlush) {
        this.names = names;
        this.options = new CacheOptions(writeback, direct, noFlush);
    }

    @Override
    public List<String> names() {
        return names;
    }

    public CacheOptions options() {
        return options;
    }

    /** The mode with exactly these settings, if one has them. */
    public static java.util.Optional<CacheMode> of(CacheOptions o) {
        for (CacheMode m : values()) {
            if (m.options.equals(o)) {
                return java.util.Optional.of(m);
            }
        }
        return java.util.Optional.empty();
    }
}
