package io.jblock.block;

import java.util.List;

/** How new space is prepared when an image is created or grown ({@code preallocation=}). */
public enum Prealloc implements Choice {
    OFF("off"),
    METADATA("metadata"),
    FALLOC("falloc"),
    FULL("full");

    private final String name;

    Prealloc(String name) {
        this.name = name;
    }

    @Override
    public List<String> names() {
        return List.of(name);
    }
}
