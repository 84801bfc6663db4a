package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.protocol.FileNode;

/**
 * One run of {@code img map}: where a run of guest bytes comes from, as
 * qemu-img's get_block_status sees it. That walks the backing chain one
 * layer at a time and stops at the first layer that says something (data or
 * zero): a layer that has the bytes, a layer without a backing file, or one
 * whose backing file ends before the run. {@code depth} counts the layers
 * passed over; {@code present} is whether the stopping layer has the bytes.
 *
 * @param offset   the host offset in {@code filename}, -1 when unknown
 * @param filename the protocol node holding the bytes, null when unknown
 */
record MapEntry(long start, long length, int depth, boolean present, boolean zero, boolean data,
                long offset, String filename) {
    boolean hasOffset() {
        return offset >= 0;
    }

    /** The entry for the run at {@code start}, at most {@code max} bytes. */
    static MapEntry at(BlockNode top, long start, long max) throws BlockException {
        long topLength = top.length();
        if (start >= topLength) {
            return pastTheEnd(top, start, max);
        }
        BlockNode layer = top;
        long length = max;
        int depth = 0;
        while (true) {
            BlockStatus s = layer.blockStatus(start, Math.min(length, layer.length() - start));
            length = s.length();
            if (s.depth() == 1) {
                return of(start, s, depth);
            }
            BlockNode backing = layer.child("backing");
            if (backing == null || start >= backing.length()) {
                // The layer itself may know where the zeroes sit (an unallocated subcluster of a qcow2 cluster).
                return new MapEntry(start, length, depth, false, true, false,
                        s.hasHostOffset() ? s.hostOffset() : -1, s.hasHostOffset() ? fileName(s.file()) : null);
            }
            layer = backing;
            depth++;
        }
    }

    private static MapEntry of(long start, BlockStatus s, int depth) {
        String name = s.hasHostOffset() ? fileName(s.file()) : null;
        return new MapEntry(start, s.length(), depth, s.isAllocated(), s.isZero(), s.isData(),
                s.hasHostOffset() ? s.hostOffset() : -1, name);
    }

    /** Past the true end, in the last sector: zeroes that continue the file (see {@link SectorImage}). */
    private static MapEntry pastTheEnd(BlockNode top, long start, long max) throws BlockException {
        BlockStatus s = SectorImage.status(top, start, max);
        return new MapEntry(start, max, 0, true, true, false, s.hasHostOffset() ? s.hostOffset() : -1,
                s.hasHostOffset() ? fileName(s.file()) : null);
    }

    /** The name QEMU shows for a protocol node: the file name as opened. */
    private static String fileName(BlockNode node) {
        if (node instanceof FileNode f) {
            return f.path().toString();
        }
        return node.nodeName();
    }

    /** qemu-img's entry_mergeable: the same kind of run, and for mapped runs contiguous in the same file. */
    boolean mergeableWith(MapEntry next) {
        if (length == 0) {
            return false;
        }
        if (zero != next.zero || data != next.data || depth != next.depth || present != next.present
                || (filename == null) != (next.filename == null) || hasOffset() != next.hasOffset()) {
            return false;
        }
        if (filename != null && !filename.equals(next.filename)) {
            return false;
        }
        return !hasOffset() || offset + length == next.offset;
    }

    MapEntry withLength(long newLength) {
        return new MapEntry(start, newLength, depth, present, zero, data, offset, filename);
    }

    /** The human format treats every non-data run as zero, so that more of them merge. */
    MapEntry asHumanHole() {
        return new MapEntry(start, length, depth, present, true, false, offset, filename);
    }

    String json() {
        return "{ \"start\": " + start + ", \"length\": " + length + ", \"depth\": " + depth
                + ", \"present\": " + present + ", \"zero\": " + zero + ", \"data\": " + data
                + (hasOffset() ? ", \"offset\": " + offset : "") + "}";
    }

    /** C's {@code %#-16x}: 0x-prefixed hex except for 0, padded to 16 on the right. */
    static String hexColumn(long v) {
        String s = v == 0 ? "0" : "0x" + Long.toHexString(v);
        return s.length() >= 16 ? s : s + " ".repeat(16 - s.length());
    }
}
