package io.jblock.options;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.protocol.FileNode;
import io.jblock.protocol.ImagePermissions;

import java.util.Set;

/**
 * Hands the root's permissions down a complete graph to its file nodes,
 * which lock the image for them (QEMU's bdrv_refresh_perms with the
 * default child permissions of block.c):
 *
 * <ul>
 *   <li>the "file" child of an image format (qcow2...), its storage: the
 *       format reads it, and writes and resizes it when writable; it lets
 *       nobody else write or resize it, as metadata cached in memory would
 *       go stale;</li>
 *   <li>the "file" child of raw and of filters: what their parent asked for,
 *       passed through;</li>
 *   <li>a "backing" child: read only, and everything shared, since a
 *       backing image's own format child refuses writers anyway;</li>
 *   <li>a node opened with force-share=on, and all below it, shares
 *       everything.</li>
 * </ul>
 */
final class GraphPermissions {
    private static final Set<String> PASS_THROUGH = Set.of("raw", "file", "host_device", "throttle", "blkdebug",
            "blkverify", "copy-on-read", "null-co", "null-aio", "nbd");

    private GraphPermissions() {
    }

    /** Locks every file node of the graph under {@code root}; on a conflict the caller closes the graph. */
    static void apply(BlockNode root, ImagePermissions permissions, Set<String> forceShared)
            throws BlockException {
        visit(root, permissions, forceShared);
    }

    private static void visit(BlockNode node, ImagePermissions p, Set<String> forceShared)
            throws BlockException {
        if (forceShared.contains(node.nodeName())) {
            p = new ImagePermissions(p.taken(), ImagePermissions.ALL);
        }
        if (node instanceof FileNode f) {
            f.lockImage(p);
        }
        for (BlockChild c : node.children()) {
            visit(c.node(), childPermissions(node, c.role(), p), forceShared);
        }
    }

    private static ImagePermissions childPermissions(BlockNode parent, String role, ImagePermissions p) {
        if (role.equals("backing")) {
            return new ImagePermissions(p.taken() & ImagePermissions.CONSISTENT_READ, ImagePermissions.ALL);
        }
        if (role.equals("file") && PASS_THROUGH.contains(parent.driverName())) {
            return p;
        }
        int taken = ImagePermissions.CONSISTENT_READ
                | (parent.isReadOnly() ? 0 : ImagePermissions.WRITE | ImagePermissions.RESIZE);
        int shared = (p.shared() & ~(ImagePermissions.WRITE | ImagePermissions.RESIZE))
                | ImagePermissions.WRITE_UNCHANGED;
        return new ImagePermissions(taken, shared);
    }
}
