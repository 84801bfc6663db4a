package io.jblock.block;

/**
 * The settings every node has, whatever its driver, resolved by the opener
 * (a child inherits read-only, cache.direct, cache.no-flush and discard from
 * its parent unless they are set on it).
 *
 * @param nodeName the node's name in the graph (QEMU's node-name), never null
 * @param readOnly writes, zeroes, discards and truncates are refused
 * @param direct   O_DIRECT for protocols that have it (cache.direct)
 * @param noFlush  flush stops at the OS (cache.no-flush): no fdatasync, FUA stripped
 * @param discard  whether discard requests pass down (discard=unmap) or are dropped
 */
public record NodeSettings(String nodeName, boolean readOnly, boolean direct, boolean noFlush,
                           DiscardMode discard) {
    public NodeSettings {
        java.util.Objects.requireNonNull(nodeName, "nodeName");
        java.util.Objects.requireNonNull(discard, "discard");
    }

    private static final java.util.concurrent.atomic.AtomicLong AUTO_NAMES = new java.util.concurrent.atomic.AtomicLong();

    /** A writable, writeback node with a generated name: for tests and scratch disks. */
    public static NodeSettings defaults() {
        return new NodeSettings(autoName(), false, false, false, DiscardMode.UNMAP);
    }

    /** A fresh generated node name, as QEMU's "#block123". */
    public static String autoName() {
        return "#block" + AUTO_NAMES.incrementAndGet();
    }

    public NodeSettings withReadOnly(boolean ro) {
        return new NodeSettings(nodeName, ro, direct, noFlush, discard);
    }

    public NodeSettings withNoFlush(boolean nf) {
        return new NodeSettings(nodeName, readOnly, direct, nf, discard);
    }

    public NodeSettings withDirect(boolean d) {
        return new NodeSettings(nodeName, readOnly, d, noFlush, discard);
    }
}
