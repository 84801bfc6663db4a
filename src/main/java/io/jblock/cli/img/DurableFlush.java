package io.jblock.cli.img;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;

/**
 * The one real flush that ends {@code img convert} under its default cache
 * mode. The target is written with cache=unsafe, so the copy pays for no
 * flush at all; qemu-img then closes it without ever calling fdatasync, and
 * a power cut soon after a "successful" convert can lose the image. jblock
 * does better: one flush to the OS, then one fdatasync of each file the
 * target is made of (not of its backing file, which it did not write).
 */
final class DurableFlush {
    private DurableFlush() {
    }

    static void flush(BlockNode root) throws BlockException {
        root.flush();
        toDisk(root);
    }

    private static void toDisk(BlockNode node) throws BlockException {
        node.flushToDisk();
        for (BlockChild c : node.children()) {
            if (!c.role().equals("backing")) {
                toDisk(c.node());
            }
        }
    }
}
