package io.jblock.block;

import java.util.List;

/** What {@code discard=} does with discard requests: drop them, or pass them down to free space. */
public enum DiscardMode implements Choice {
    IGNORE(List.of("ignore", "off")),
    UNMAP(List.of("unmap", "on"));

    private final List<String> names;

    DiscardMode(List<String> names) {
        this.names = names;
    }

    @Override
    public List<String> names() {
        return names;
    }
}
