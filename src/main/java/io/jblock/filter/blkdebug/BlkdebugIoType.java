package io.jblock.filter.blkdebug;

/**
 * The kinds of request an inject-error rule can match ({@code iotype=}), as
 * QEMU's BlkdebugIOType. Without {@code iotype} a rule matches every kind
 * except block-status.
 */
enum BlkdebugIoType {
    READ("read"),
    WRITE("write"),
    WRITE_ZEROES("write-zeroes"),
    DISCARD("discard"),
    FLUSH("flush"),
    BLOCK_STATUS("block-status");

    /** The mask a rule without {@code iotype} gets: everything but block-status, as QEMU's default. */
    static final int DEFAULT_MASK = READ.bit() | WRITE.bit() | WRITE_ZEROES.bit() | DISCARD.bit() | FLUSH.bit();

    private final String optionName;

    BlkdebugIoType(String optionName) {
        this.optionName = optionName;
    }

    int bit() {
        return 1 << ordinal();
    }

    static BlkdebugIoType ofOptionName(String name) {
        for (BlkdebugIoType t : values()) {
            if (t.optionName.equals(name)) {
                return t;
            }
        }
        return null;
    }
}
