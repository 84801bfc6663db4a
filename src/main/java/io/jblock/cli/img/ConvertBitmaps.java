package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.format.qcow2.Qcow2Bitmaps;
import io.jblock.format.qcow2.Qcow2Node;

/**
 * {@code convert --bitmaps [--skip-broken-bitmaps]}, as qemu-img 7.2's
 * convert_check_bitmaps and convert_copy_bitmaps: before anything is
 * written, the source must hold persistent bitmaps (qcow2 version 3) and
 * none may be inconsistent unless skipped; after the copy, each bitmap is
 * added to the target with the source's granularity and enabled state, then
 * filled by a merge from the source. They are then stored at once, so the
 * final durable flush covers them (qemu-img stores them at close, unflushed).
 */
final class ConvertBitmaps {
    private ConvertBitmaps() {
    }

    private static Qcow2Bitmaps of(BlockNode node) {
        return node instanceof Qcow2Node q && q.bitmaps().supported() ? q.bitmaps() : null;
    }

    static boolean supported(BlockNode node) {
        return of(node) != null;
    }

    static void check(ImgContext ctx, BlockNode source, boolean skipBroken) throws ImgExit {
        Qcow2Bitmaps bitmaps = of(source);
        if (bitmaps == null) {
            throw ctx.fail("Source lacks bitmap support");
        }
        for (Qcow2Bitmaps.Live b : bitmaps.live()) {
            if (!skipBroken && b.inconsistent()) {
                ctx.error("Cannot copy inconsistent bitmap '" + b.name() + "'");
                ctx.err().print("Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it\n");
                throw new ImgExit(1);
            }
        }
    }

    static void copy(ImgContext ctx, BlockNode source, BlockNode target, boolean skipBroken) throws ImgExit {
        Qcow2Bitmaps from = of(source);
        Qcow2Bitmaps to = of(target);
        String nodeName = BitmapCommand.nodeName();
        for (Qcow2Bitmaps.Live b : from.live()) {
            if (skipBroken && b.inconsistent()) {
                ctx.warn("Skipping inconsistent bitmap '" + b.name() + "'");
                continue;
            }
            try {
                to.add(b.name(), b.granularity(), !b.enabled(), nodeName);
            } catch (BlockException e) {
                throw ctx.fail("Failed to create bitmap " + b.name() + ": " + e.getMessage());
            }
            try {
                to.merge(b.name(), from, b.name());
            } catch (BlockException e) {
                try {
                    to.remove(b.name());
                } catch (BlockException ignored) {
                    // QEMU ignores a failed removal here too; the merge's error is the one to report.
                }
                throw ctx.fail("Failed to populate bitmap " + b.name() + ": " + e.getMessage());
            }
        }
        try {
            to.storeAndRelease();
        } catch (BlockException e) {
            throw ctx.fail("Failed to store bitmaps: " + e.getMessage());
        }
    }
}
