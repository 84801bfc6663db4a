package io.jblock.filter.blkdebug;

import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;

import java.util.List;

/**
 * {@code driver=blkdebug}: options {@code config} (a rules file),
 * {@code inject-error.N.*}, {@code set-state.N.*}, {@code align},
 * {@code max-transfer}, {@code opt-write-zero}, {@code max-write-zero},
 * {@code opt-discard}, {@code max-discard}, {@code take-child-perms},
 * {@code unshare-child-perms}, and the child {@code image}. Like QEMU's, it
 * is a protocol-level driver with a file-name syntax,
 * {@code blkdebug:CONFIG:IMAGE} (CONFIG may be empty).
 */
public final class BlkdebugDriver implements BlockDriver {
    private static final String PREFIX = "blkdebug:";
    /** QEMU's BlockPermission names, for take-child-perms and unshare-child-perms. */
    private static final List<String> PERMISSIONS = List.of("consistent-read", "write", "write-unchanged", "resize");

    @Override
    public String name() {
        return BlkdebugNode.DRIVER;
    }

    @Override
    public boolean isProtocol() {
        return true;
    }

    @Override
    public BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException {
        String imageName = options.take("x-image").orElse(null);
        String filename = options.take("filename").orElse(null);
        if (filename != null) {
            if (filename.startsWith(PREFIX)) {
                String rest = filename.substring(PREFIX.length());
                int colon = rest.indexOf(':');
                if (colon < 0) {
                    throw new BlockException(Errno.EINVAL, "blkdebug requires both config file and image path");
                }
                if (colon > 0) {
                    options.put("config", rest.substring(0, colon));
                }
                imageName = rest.substring(colon + 1);
            } else {
                imageName = filename;
            }
        }
        String config = options.take("config").orElse(null);
        List<BlkdebugRule> rules = BlkdebugRules.read(config, options);
        long align = options.takeUnsigned("align").orElse(0L);
        long maxTransfer = options.takeUnsigned("max-transfer").orElse(0L);
        long optWriteZero = options.takeUnsigned("opt-write-zero").orElse(0L);
        long maxWriteZero = options.takeUnsigned("max-write-zero").orElse(0L);
        long optDiscard = options.takeUnsigned("opt-discard").orElse(0L);
        long maxDiscard = options.takeUnsigned("max-discard").orElse(0L);
        permissions(options, "take-child-perms");
        permissions(options, "unshare-child-perms");

        if (imageName != null && !options.hasChild("image") && !options.has("image")) {
            options.put("image.filename", imageName);
        }
        BlockNode image = context.openChild("image", options, settings);
        if (image == null) {
            throw new BlockException(Errno.EINVAL, "A block device must be specified for \"image\"");
        }
        try {
            // QEMU checks the limits after the image is open, against its alignment.
            if (align != 0 && (align >= Integer.MAX_VALUE || Long.bitCount(align) != 1)) {
                throw constraint("align", align);
            }
            long effective = Math.max(align, image.capabilities().requestAlignment());
            checkAligned("max-transfer", maxTransfer, effective);
            checkAligned("opt-write-zero", optWriteZero, effective);
            checkAligned("max-write-zero", maxWriteZero, Math.max(optWriteZero, effective));
            checkAligned("opt-discard", optDiscard, effective);
            checkAligned("max-discard", maxDiscard, Math.max(optDiscard, effective));
            return new BlkdebugNode(settings, image, rules, new BlkdebugNode.Limits((int) align, (int) maxTransfer));
        } catch (BlockException e) {
            image.close();
            throw e;
        }
    }

    private static void checkAligned(String key, long value, long align) throws BlockException {
        if (value != 0 && (value >= Integer.MAX_VALUE || value % align != 0)) {
            throw constraint(key, value);
        }
    }

    private static BlockException constraint(String key, long value) {
        return new BlockException(Errno.EINVAL, "Cannot meet constraints with " + key + " " + Long.toUnsignedString(value));
    }

    /** Permission lists are accepted and checked; jblock has no permission system for them to change. */
    private static void permissions(NodeOptions options, String key) throws BlockException {
        NodeOptions list = options.takeChild(key);
        for (String v : list.remaining().values()) {
            if (v == null || !PERMISSIONS.contains(v)) {
                throw new BlockException(Errno.EINVAL, "invalid parameter value: " + v);
            }
        }
    }
}
