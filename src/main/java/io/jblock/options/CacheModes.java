package io.jblock.options;

import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.Choice;

import java.util.Optional;

/** Parsing of {@code cache=} values through the one table in {@link CacheMode}. */
public final class CacheModes {
    /** The one spelling jblock takes that QEMU 7.2 does not. */
    public static final String JBLOCK_ONLY_SPELLING = "volatile";

    private CacheModes() {
    }

    /** Every spelling in the table, {@code volatile} included (jblock's {@code -drive} and library). */
    public static Optional<CacheOptions> parse(String text) {
        return Choice.parse(CacheMode.class, text).map(CacheMode::options);
    }

    /**
     * Exactly the spellings QEMU 7.2's bdrv_parse_cache_mode takes, for the
     * tools that must fail where qemu-io {@code -t} and qemu-nbd {@code --cache} fail.
     */
    public static Optional<CacheOptions> parseQemu(String text) {
        return JBLOCK_ONLY_SPELLING.equals(text) ? Optional.empty() : parse(text);
    }
}
