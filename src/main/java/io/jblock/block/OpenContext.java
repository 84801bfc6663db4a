package io.jblock.block;

import io.jblock.engine.IoEngine;

/** What a driver needs from whoever opens the graph: its children, and the I/O engines. */
public interface OpenContext {
    /**
     * Opens the child {@code role} ("file", "backing") of a node being opened,
     * from the {@code role.*} keys of {@code parentOptions} (or a plain
     * filename), inheriting {@code parentSettings} where the child does not
     * set them. Returns null when the options name no such child.
     */
    BlockNode openChild(String role, NodeOptions parentOptions, NodeSettings parentSettings) throws BlockException;

    /**
     * The dotted options a {@code json:{...}} name stands for (as QEMU's
     * bdrv_open reads such names), for formats whose metadata can name a
     * child that way (qcow2 backing files).
     */
    java.util.Map<String, String> jsonOptions(String jsonName) throws BlockException;

    /**
     * Whether the graph is opened to be checked (QEMU's BDRV_O_CHECK, as
     * qemu-img check opens): formats then leave what the check reads and
     * repairs itself (a qcow2 snapshot table) instead of refusing it.
     */
    default boolean checkMode() {
        return false;
    }

    /** The engine for {@code aio=}; fails with QEMU's message where the engine cannot run here. */
    IoEngine engine(AioMode mode) throws BlockException;
}
