package io.jblock.options;

import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.Choice;

import java.util.Optional;

/** Parsing of {@code cache=} values through the one table in {@link CacheMode}. */
public final class CacheModes {
    private CacheModes() {
    }

    public static Optional<CacheOptions> parse(String text) {
        return Choice.parse(CacheMode.class, text).map(CacheMode::options);
    }
}
