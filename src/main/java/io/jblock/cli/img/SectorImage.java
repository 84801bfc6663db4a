package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;

/**
 * An image as qemu-img's commands see it: QEMU's block layer counts lengths
 * in 512-byte sectors, so a 5-byte raw file is a 512-byte image whose last
 * 507 bytes read as zero. This answers the length and block status of that
 * rounded image; jblock's nodes know only their true length.
 */
final class SectorImage {
    static final long SECTOR = 512;

    private SectorImage() {
    }

    /** The length rounded up to whole sectors. */
    static long length(BlockNode node) throws BlockException {
        return roundUp(node.length());
    }

    static long roundUp(long length) {
        return (length + SECTOR - 1) / SECTOR * SECTOR;
    }

    /**
     * The status at {@code offset}, at most {@code max} bytes; past the true
     * end, a run of zeroes that continues the last byte's place in its file
     * (what QEMU's file protocol reports for the end of a file).
     */
    static BlockStatus status(BlockNode node, long offset, long max) throws BlockException {
        long length = node.length();
        if (offset < length) {
            return node.blockStatus(offset, Math.min(max, length - offset));
        }
        BlockStatus last = node.blockStatus(length - 1, 1);
        BlockStatus tail = new BlockStatus(max, BlockStatus.ZERO | BlockStatus.ALLOCATED, 1);
        return last.hasHostOffset() ? tail.at(last.hostOffset() + (offset - (length - 1)), last.file()) : tail;
    }
}
