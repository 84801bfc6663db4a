package io.jblock.block;

import java.util.Locale;

/**
 * Points inside a request that a format reports to the node below it, so a
 * {@code blkdebug} filter placed there can inject an error or change state
 * exactly then. The names are QEMU's blkdebug event names (lower case in
 * options: {@code event=l2_update}).
 *
 * <p>A format reports an event on its {@code file} child just before the I/O
 * the event names; {@link BlockNode#debugEvent} does nothing except in a
 * blkdebug node.
 */
public enum DebugEvent {
    L1_UPDATE,
    L1_GROW_ALLOC_TABLE,
    L1_GROW_WRITE_TABLE,
    L1_GROW_ACTIVATE_TABLE,
    L2_LOAD,
    L2_UPDATE,
    L2_UPDATE_COMPRESSED,
    L2_ALLOC_COW_READ,
    L2_ALLOC_WRITE,
    READ_AIO,
    READ_BACKING_AIO,
    READ_COMPRESSED,
    WRITE_AIO,
    WRITE_COMPRESSED,
    VMSTATE_LOAD,
    VMSTATE_SAVE,
    COW_READ,
    COW_WRITE,
    REFTABLE_LOAD,
    REFTABLE_GROW,
    REFTABLE_UPDATE,
    REFBLOCK_LOAD,
    REFBLOCK_UPDATE,
    REFBLOCK_UPDATE_PART,
    REFBLOCK_ALLOC,
    REFBLOCK_ALLOC_HOOKUP,
    REFBLOCK_ALLOC_WRITE,
    REFBLOCK_ALLOC_WRITE_BLOCKS,
    REFBLOCK_ALLOC_WRITE_TABLE,
    REFBLOCK_ALLOC_SWITCH_TABLE,
    CLUSTER_ALLOC,
    CLUSTER_ALLOC_BYTES,
    CLUSTER_FREE,
    FLUSH_TO_OS,
    FLUSH_TO_DISK,
    PWRITEV_RMW_HEAD,
    PWRITEV_RMW_AFTER_HEAD,
    PWRITEV_RMW_TAIL,
    PWRITEV_RMW_AFTER_TAIL,
    PWRITEV,
    PWRITEV_ZERO,
    PWRITEV_DONE,
    EMPTY_IMAGE_PREPARE,
    L1_SHRINK_WRITE_TABLE,
    L1_SHRINK_FREE_L2_CLUSTERS,
    COR_WRITE,
    CLUSTER_ALLOC_SPACE,
    NONE;

    /** The name in options, as QEMU spells it: {@code l2_update}. */
    public String optionName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The event of an option name, or null. */
    public static DebugEvent ofOptionName(String name) {
        for (DebugEvent e : values()) {
            if (e.optionName().equals(name)) {
                return e;
            }
        }
        return null;
    }
}
