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

    /**
     * Creates an image at {@code filename}, as QEMU's bdrv_create: a
     * protocol makes the file, a format calls its protocol's create and then
     * writes its metadata. The file name reaches the driver as the user gave
     * it (without a "file:" prefix), since normalising it ("dir/" to "dir")
     * would change both the outcome and the message.
     */
    default void create(String filename, ImageCreation request) throws BlockException {
        throw new BlockException.Unsupported("Driver '" + name() + "' does not support image creation");
    }

    /**
     * Creates an image of {@code size} bytes with no format options.
     *
     * @param size          unsigned 64 bits, as the user gave it; the driver rounds as its format needs
     * @param preallocation how the new space is prepared
     */
    default void create(String filename, long size, Prealloc preallocation) throws BlockException {
        create(filename, ImageCreation.of(size, preallocation));
    }
}
