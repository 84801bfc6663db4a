package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;
import io.jblock.protocol.FileNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Map;

/**
 * The children a qcow2 image names inside itself: its backing file and its
 * external data file. Both are opened through the {@link OpenContext}, as
 * "backing" and "data-file" children, so they inherit the parent's settings
 * (a backing file is always read-only); options the user gave for them
 * ({@code backing.driver=...}, {@code data-file.filename=...}) win over what
 * the image says.
 *
 * <p>Names are plain paths. A relative backing file name is resolved against
 * the folder of the image that names it; a relative data file name, as QEMU
 * 7.2 opens it, from the working directory. A {@code json:} backing name, or a backing file
 * whose format the image does not record (QEMU would probe it), is refused
 * unless the driver's {@link Qcow2Driver.Policy} allows it. A chain is at most
 * {@link Qcow2Limits#MAX_CHAIN_DEPTH} deep and may not pass through the same
 * file twice.
 */
final class Qcow2Children {
    private Qcow2Children() {
    }

    /** The images being opened on this thread, top first: a chain opens depth-first inside its top's open. */
    private static final ThreadLocal<Deque<Path>> OPENING = ThreadLocal.withInitial(ArrayDeque::new);

    /** The backing file name stored at backing_file_offset, or null when the image has none. */
    static String backingName(Qcow2Header h, ByteBuffer firstCluster) throws BlockException {
        if (h.backingFileOffset() == 0) {
            return null;
        }
        long len = Integer.toUnsignedLong(h.backingFileSize());
        if (len > Math.min(Qcow2Limits.MAX_BACKING_NAME, h.clusterSize() - h.backingFileOffset())) {
            throw new BlockException.Corrupt("Backing file name too long");
        }
        byte[] name = new byte[(int) len];
        firstCluster.get((int) h.backingFileOffset(), name);
        return new String(name, StandardCharsets.UTF_8);
    }

    /**
     * Marks {@code image} as being opened until the returned handle is closed;
     * fails when it is already being opened further up the chain (a loop) or
     * the chain is too deep.
     */
    static AutoCloseable enter(BlockNode file) throws BlockException {
        Deque<Path> chain = OPENING.get();
        if (file instanceof FileNode f) {
            Path real = realPath(f.path());
            if (chain.contains(real)) {
                throw new BlockException.Corrupt("Backing file loop: '" + f.path()
                        + "' is a backing file of itself");
            }
            if (chain.size() > Qcow2Limits.MAX_CHAIN_DEPTH) {
                throw new BlockException.Unsupported("Backing chain too deep: more than "
                        + Qcow2Limits.MAX_CHAIN_DEPTH + " backing files below '" + chain.peekFirst() + "'");
            }
            chain.push(real);
            return chain::pop;
        }
        return () -> { };
    }

    static BlockNode openBacking(String name, String format, BlockNode file, NodeOptions options,
                                 NodeSettings settings, OpenContext context, Qcow2Driver.Policy policy)
            throws BlockException {
        if (options.has("backing") && options.peek("backing") == null) {
            options.take("backing"); // backing=null: the user asked for no backing file
            return null;
        }
        boolean userGave = options.hasChild("backing") || options.has("backing");
        if (name == null && !userGave) {
            return null;
        }
        if (name != null && name.startsWith("json:")) {
            if (!userGave) {
                if (!policy.allowJsonBacking()) {
                    throw new BlockException.Unsupported("Backing file name '" + name + "' is a json: description;"
                            + " jblock opens those only when allowed (or give backing.* options)");
                }
                for (Map.Entry<String, String> e : context.jsonOptions(name).entrySet()) {
                    options.put("backing." + e.getKey(), e.getValue());
                }
            }
        } else if (name != null) {
            // What the image says fills in what the user's backing.* options leave out.
            if (!options.has("backing.driver")) {
                if (format == null && !policy.probeBackingFormat()) {
                    throw new BlockException.Unsupported("The image does not record the format of its backing file '"
                            + name + "'; jblock does not probe backing files (give backing.driver=<format>)");
                }
                if (format != null) {
                    options.put("backing.driver", format);
                }
            }
            if (!options.has("backing.file") && !options.hasChild("backing.file")) {
                options.put("backing.file.filename", resolve(name, file, "backing file").toString());
            }
        }
        try {
            return context.openChild("backing", options, settings);
        } catch (BlockException e) {
            throw rewrap("Could not open backing file: ", e);
        }
    }

    static BlockNode openDataFile(Qcow2Header h, Qcow2Extensions ext, BlockNode file, NodeOptions options,
                                  NodeSettings settings, OpenContext context) throws BlockException {
        boolean userGave = options.hasChild("data-file") || options.has("data-file");
        if (!h.hasDataFile()) {
            if (userGave) {
                throw new BlockException(Errno.EINVAL,
                        "'data-file' can only be set for images with an external data file");
            }
            if (h.dataFileRaw()) {
                throw new BlockException.Corrupt("data-file-raw requires a data file");
            }
            return null;
        }
        if (!userGave) {
            if (ext.dataFile() == null) {
                throw new BlockException(Errno.EINVAL, "'data-file' is required for this image");
            }
            options.put("data-file.driver", "file");
            // QEMU 7.2 opens the stored name as it is: a relative one from the working directory, not the image's.
            options.put("data-file.filename", ext.dataFile());
        }
        BlockNode data = context.openChild("data-file", options, settings);
        if (data == null) {
            throw new BlockException(Errno.EINVAL, "'data-file' is required for this image");
        }
        return data;
    }

    /** A name relative to the folder of the image that names it. */
    private static Path resolve(String name, BlockNode file, String what) throws BlockException {
        if (name.startsWith("file:")) {
            name = name.substring("file:".length());
        }
        int colon = name.indexOf(':');
        int slash = name.indexOf('/');
        if (colon > 0 && (slash < 0 || colon < slash)) {
            throw new BlockException.Unsupported("The " + what + " '" + name
                    + "' names a protocol jblock does not open for an image's " + what);
        }
        Path p = Path.of(name);
        if (p.isAbsolute()) {
            return p;
        }
        if (!(file instanceof FileNode f)) {
            throw new BlockException.Unsupported("Cannot use the relative " + what + " name '" + name
                    + "': the image is not in a folder");
        }
        // As QEMU's path_combine: beside the image as it was named, so a relative image gives a relative name.
        Path dir = f.path().getParent();
        return dir == null ? p : dir.resolve(p);
    }

    private static Path realPath(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }

    private static BlockException rewrap(String prefix, BlockException e) {
        String m = prefix + e.getMessage();
        return switch (e) {
            case BlockException.Corrupt c -> new BlockException.Corrupt(m);
            case BlockException.Unsupported u -> new BlockException.Unsupported(m);
            default -> new BlockException(e.errno(), m, e);
        };
    }
}
