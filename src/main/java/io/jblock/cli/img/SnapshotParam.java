package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.format.qcow2.Qcow2Node;

/**
 * The {@code -l snapshot_param} of convert and measure: either
 * "snapshot.id=ID,snapshot.name=NAME" (read as QemuOpts reads it, the last
 * of a key counting) or a bare id-or-name; {@link #load} makes the source
 * show that snapshot, as QEMU's bdrv_snapshot_load_tmp does.
 */
record SnapshotParam(boolean longForm, String id, String name, String idOrName) {
    /** Parses {@code -l}'s argument, failing as qemu-img does on an unknown key. */
    static SnapshotParam parse(ImgContext ctx, String arg) throws ImgExit {
        if (!arg.startsWith("snapshot.")) {
            return new SnapshotParam(false, null, null, arg);
        }
        String id = null;
        String name = null;
        for (String part : arg.split(",")) {
            int eq = part.indexOf('=');
            String key = eq < 0 ? part : part.substring(0, eq);
            String value = eq < 0 ? "on" : part.substring(eq + 1);
            if (!key.equals("snapshot.id") && !key.equals("snapshot.name")) {
                ctx.error("Invalid parameter '" + key + "'");
                throw ctx.fail("Failed in parsing snapshot param '" + arg + "'");
            }
            if (eq < 0) {
                ctx.warn("short-form boolean option '" + key + "' deprecated\nPlease use " + key + "=on instead");
            }
            if (key.equals("snapshot.id")) {
                id = value;
            } else {
                name = value;
            }
        }
        return new SnapshotParam(true, id, name, null);
    }

    /** Makes {@code source} (opened read-only) show the snapshot; "Failed to load snapshot: ..." otherwise. */
    void load(ImgContext ctx, BlockNode source) throws ImgExit {
        if (!(source instanceof Qcow2Node q)) {
            throw ctx.fail("Failed to load snapshot: Block format '" + source.driverName() + "' used by device ''"
                    + " does not support temporarily loading internal snapshots");
        }
        try {
            if (longForm) {
                q.loadSnapshotTemporarily(id, name);
            } else {
                // bdrv_snapshot_load_tmp_by_id_or_name: as an id, then as a name.
                try {
                    q.loadSnapshotTemporarily(idOrName, null);
                } catch (BlockException e) {
                    if (e.errno() != Errno.ENOENT && e.errno() != Errno.EINVAL) {
                        throw e;
                    }
                    q.loadSnapshotTemporarily(null, idOrName);
                }
            }
        } catch (BlockException e) {
            throw ctx.fail("Failed to load snapshot: " + e.getMessage());
        }
    }
}
