package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.CacheOptions;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;

/** Opens a {@link Drive} from a {@link DriveConfig}: validates the drive-level pairs, opens the graph. */
public final class DriveOpener {
    private final GraphOpener graph;

    public DriveOpener(GraphOpener graph) {
        this.graph = graph;
    }

    public static DriveOpener standard() {
        return new DriveOpener(GraphOpener.standard());
    }

    public GraphOpener graph() {
        return graph;
    }

    public Drive open(DriveConfig c) throws BlockException {
        NodeOptions o = c.options;
        // Explicit cache.* keys win over cache=; cache.writeback belongs to the drive, the others to the root node.
        Boolean writeback = o.takeBool("cache.writeback").orElse(null);
        CacheOptions cache = c.cache.override(writeback, null, null);
        if (c.detectZeroes == DetectZeroes.UNMAP && c.discard != DiscardMode.UNMAP) {
            throw new BlockException(Errno.EINVAL,
                    "setting detect-zeroes to unmap is not allowed without setting discard operation to unmap");
        }
        boolean direct = o.has("cache.direct") ? NodeOptions.parseBool("cache.direct", o.peek("cache.direct"))
                : cache.direct();
        if (c.aio == io.jblock.block.AioMode.NATIVE && !direct) {
            throw new BlockException(Errno.EINVAL,
                    "aio=native was specified, but it requires cache.direct=on, which was not specified.");
        }
        NodeSettings root = new NodeSettings(NodeSettings.autoName(), c.readOnly, cache.direct(), cache.noFlush(),
                c.discard);
        graph.defaultAio(c.aio).allowProbe(c.allowProbe).warnings(c.warnings);
        BlockNode node = graph.open(c.filename, o, root);
        if (c.snapshot) {
            throw new BlockException(Errno.ENOTSUP, "snapshot=on is not supported yet");
        }
        return new Drive(c.id, node, cache.writeback(), c.readOnly, c.detectZeroes);
    }
}
