package io.jblock.cli.img;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockNode;
import io.jblock.protocol.FileNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Refuses a target that is one of the files a command reads from (an image
 * given as both source and target, or a source's backing file). QEMU
 * refuses these through its image locks, with "Failed to get "write" lock",
 * and so does jblock's file protocol now (a convert source does not share
 * write, so creating or opening it as the target fails in the file layer).
 * This check stays for the cases the locks do not cover, where QEMU empties
 * the source: a source opened with -U (force-share), locking=off, and
 * qemu-img dd, whose input shares everything.
 */
final class SourceGuard {
    private SourceGuard() {
    }

    /** The lock failure QEMU prints after {@code prefix} when {@code path} is read by one of {@code sources}. */
    static void refuseIfRead(ImgContext ctx, List<BlockNode> sources, String path, String prefix) throws ImgExit {
        Path target = Path.of(path);
        if (!Files.exists(target)) {
            return;
        }
        for (BlockNode source : sources) {
            if (reads(source, target)) {
                throw ctx.fail(prefix + "Failed to get \"write\" lock\nIs another process using the image ["
                        + path + "]?");
            }
        }
    }

    private static boolean reads(BlockNode node, Path target) {
        if (node instanceof FileNode f) {
            try {
                return Files.isSameFile(f.path(), target);
            } catch (IOException e) {
                return false;
            }
        }
        for (BlockChild c : node.children()) {
            if (reads(c.node(), target)) {
                return true;
            }
        }
        return false;
    }
}
