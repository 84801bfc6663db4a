package io.jblock.block;

import java.util.List;

/**
 * {@code detect-zeroes=}: writes whose buffer is all zeroes become
 * write-zeroes requests (on), and may also deallocate (unmap, which needs
 * discard=unmap).
 */
public enum DetectZeroes implements Choice {
    OFF("off"),
    ON("on"),
    UNMAP("unmap");

    private final String name;

    DetectZeroes(String name) {
        this.name = name;
    }

    @Override
    public List<String> names() {
        return List.of(name);
    }
}
