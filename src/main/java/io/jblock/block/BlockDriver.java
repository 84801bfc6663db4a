package io.jblock.block;

/**
 * A driver: opens nodes of one kind ("file", "memory", "raw", "qcow2"). One
 * class per driver, small; drivers are found by name in a registry.
 */
public interface BlockDriver {
    /** The name users give as {@code driver=} or {@code format=}. */
    String name();

    /** Protocols reach storage (file, memory, nbd); formats interpret a child. */
    boolean isProtocol();

    /**
     * Opens a node. The driver takes its own keys from {@code options} and
     * opens its children through {@code context}; keys left over are refused
     * by the caller.
     */
    BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException;
}
