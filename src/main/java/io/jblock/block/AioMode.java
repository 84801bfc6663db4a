package io.jblock.block;

import java.util.List;

/** The I/O engine of a file node ({@code aio=}). native needs cache.direct=on, as QEMU's Linux AIO does. */
public enum AioMode implements Choice {
    THREADS("threads"),
    NATIVE("native"),
    IO_URING("io_uring");

    private final String name;

    AioMode(String name) {
        this.name = name;
    }

    @Override
    public List<String> names() {
        return List.of(name);
    }
}
