package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.filter.SnapshotOverlay;

import java.nio.file.Path;

/**
 * Opens a {@link Drive} from a {@link DriveConfig}: opens the graph with the
 * drive's settings as the root's defaults, checks the pairs that span drive
 * and root, and with {@code snapshot=on} puts a {@link SnapshotOverlay} on top
 * of an image opened read-only, as QEMU's BDRV_O_SNAPSHOT does.
 */
public final class DriveOpener {
    private final GraphOpener graph;
    private Path snapshotDirectory;

    public DriveOpener(GraphOpener graph) {
        this.graph = graph;
    }

    /** The standard drivers and engines. */
    public static DriveOpener standard() {
        return new DriveOpener(GraphOpener.standard());
    }

    public GraphOpener graph() {
        return graph;
    }

    /** Where snapshot overlays keep their temporary files (default: {@link SnapshotOverlay#temporaryDirectory()}). */
    public DriveOpener snapshotDirectory(Path dir) {
        this.snapshotDirectory = dir;
        return this;
    }

    public Drive open(DriveConfig c) throws BlockException {
        NodeOptions o = c.options;
        if (c.snapshot) {
            // bdrv_open_inherit drops read-only for the image under a temporary overlay: it is always read-only.
            o.take("read-only");
        }
        NodeSettings rootDefaults = new NodeSettings(NodeSettings.autoName(), c.readOnly || c.snapshot,
                c.cache.direct(), c.cache.noFlush(), c.discard);
        graph.defaultAio(c.aio).allowProbe(c.allowProbe).warnings(c.warnings).use(c.use).checkMode(c.check);
        BlockNode node = graph.open(c.filename, o, rootDefaults);
        try {
            DetectZeroes dz = c.detectZeroes != DetectZeroes.OFF ? c.detectZeroes : graph.rootDetectZeroes();
            DiscardMode discard = c.snapshot ? c.discard : node.settings().discard();
            if (dz == DetectZeroes.UNMAP && discard != DiscardMode.UNMAP) {
                throw new BlockException(Errno.EINVAL, DriveMessages.DETECT_ZEROES_UNMAP_NEEDS_DISCARD);
            }
            if (c.snapshot) {
                NodeSettings overlay = new NodeSettings(NodeSettings.autoName(), c.readOnly, false, true, c.discard);
                node = snapshotDirectory != null
                        ? SnapshotOverlay.open(node, overlay, graph.engine(AioMode.THREADS), snapshotDirectory)
                        : SnapshotOverlay.open(node, overlay, graph.engine(AioMode.THREADS));
            }
            return new Drive(c.id, node, c.cache.writeback(), c.readOnly, dz);
        } catch (BlockException e) {
            node.close();
            throw e;
        }
    }
}
