package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.ImageUse;
import io.jblock.options.DriverRegistry;
import io.jblock.options.JsonOptions;
import io.jblock.options.KeyValueParser;
import io.jblock.protocol.FileNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Opens the image a command names, as qemu-img's img_open does: a file
 * name with an optional format ({@code -f}), or with {@code --image-opts} a
 * string of dotted options in QemuOpts syntax ({@link KeyValueParser}, as
 * qemu-img's source options: the first bare element is "file"). Every
 * failure but a malformed option string reads "Could not open 'NAME': why",
 * NAME being the argument as given.
 *
 * <p>Checks that QEMU makes below the format and that jblock's drivers do
 * not make yet are made here, so the messages match: the file protocol wants
 * a non-empty name and a regular file, a protocol prefix must be known, and
 * a QEMU format jblock does not have yet is named as such rather than
 * "Unknown driver".
 */
final class ImageOpener {
    /** What to open. */
    record Request(String name, String format, boolean imageOpts, boolean readOnly, boolean forceShare) {
    }

    /** An open image and the name "image:" shows for it. */
    record Opened(Drive drive, String displayName) implements AutoCloseable {
        @Override
        public void close() throws BlockException {
            drive.close();
        }
    }

    /**
     * How a command wants the drive: its cache mode (qemu-img's -t and -T)
     * and whether discards reach the image (convert's BDRV_O_UNMAP).
     */
    record Tuning(io.jblock.block.CacheOptions cache, io.jblock.block.DiscardMode discard, DriveOpener opener,
                  ImageUse use) {
        static final Tuning DEFAULT = new Tuning(io.jblock.block.CacheOptions.WRITEBACK,
                io.jblock.block.DiscardMode.IGNORE);

        /** For the default use (see {@link ImageUse}). */
        Tuning(io.jblock.block.CacheOptions cache, io.jblock.block.DiscardMode discard, DriveOpener opener) {
            this(cache, discard, opener, ImageUse.DEFAULT);
        }

        /** The same, for another use of the image (the image locks it takes). */
        Tuning as(ImageUse other) {
            return new Tuning(cache, discard, opener, other);
        }

        /** With the standard drivers and engines. */
        Tuning(io.jblock.block.CacheOptions cache, io.jblock.block.DiscardMode discard) {
            this(cache, discard, null);
        }
    }

    private ImageOpener() {
    }

    static Opened open(ImgContext ctx, Request r) throws ImgExit {
        return open(ctx, r, Tuning.DEFAULT);
    }

    /** As {@link #open(ImgContext, Request)}, with {@code settings} adjusting the drive (cache mode, aio) last. */
    static Opened open(ImgContext ctx, Request r, java.util.function.Consumer<DriveConfig> settings) throws ImgExit {
        return open(ctx, r, Tuning.DEFAULT, settings);
    }

    static Opened open(ImgContext ctx, Request r, Tuning tuning) throws ImgExit {
        return open(ctx, r, tuning, c -> { });
    }

    static Opened open(ImgContext ctx, Request r, Tuning tuning,
                               java.util.function.Consumer<DriveConfig> settings) throws ImgExit {
        if (r.imageOpts() && r.format() != null) {
            throw ctx.fail("--image-opts and --format are mutually exclusive");
        }
        LinkedHashMap<String, String> imageOpts = null;
        if (r.imageOpts()) {
            try {
                imageOpts = KeyValueParser.parse(r.name(), "file", ctx::warn);
            } catch (BlockException e) {
                // QEMU parses the string before it opens anything, and says so without "Could not open".
                throw ctx.fail(e.getMessage());
            }
        }
        try {
            return openOrThrow(ctx, r, imageOpts, tuning, settings);
        } catch (BlockException e) {
            throw ctx.fail("Could not open '" + r.name() + "': " + e.getMessage());
        }
    }

    /** Opens as the default request does, letting a {@link BlockException} through (create's backing probe). */
    static Opened openOrThrow(ImgContext ctx, Request r, LinkedHashMap<String, String> imageOpts)
            throws BlockException {
        return openOrThrow(ctx, r, imageOpts, Tuning.DEFAULT, c -> { });
    }

    static Opened openOrThrow(ImgContext ctx, Request r, LinkedHashMap<String, String> imageOpts,
                                      Tuning tuning, java.util.function.Consumer<DriveConfig> settings)
            throws BlockException {
        DriveConfig c = new DriveConfig();
        c.cache = tuning.cache();
        c.discard = tuning.discard();
        c.readOnly = r.readOnly();
        c.use = tuning.use();
        // QEMU prints the raw-probing warning as it is ("WARNING: ..."), not through warn_report.
        c.warnings = w -> {
            if (w.startsWith("WARNING: ")) {
                ctx.err().print(w + "\n");
            } else {
                ctx.warn(w);
            }
        };
        NodeOptions options = optionsFor(r, imageOpts);
        // QEMU's order: the driver's name, then the file protocol's checks, then the format's own.
        String named = options.peek("driver");
        boolean known = named == null || DriverRegistry.standard().find(named).isPresent();
        if (!known && !QemuFormats.QEMU_DRIVERS.contains(named)) {
            throw new BlockException(Errno.EINVAL, "Unknown driver '" + named + "'");
        }
        if (isPlainName(r)) {
            c.filename = checkFileName(r.name(), r.format(), r.readOnly());
            if (!known && !Files.exists(Path.of(c.filename))) {
                throw new BlockException(Errno.ENOENT, "Could not open '" + c.filename
                        + "': No such file or directory");
            }
        } else if (!options.has("driver") && options.hasChild("file")) {
            probeOnFileChild(options);
        }
        String driver = options.peek("driver");
        if (driver != null && DriverRegistry.standard().find(driver).isEmpty()) {
            throw new BlockException(Errno.ENOTSUP, QemuFormats.notAvailable(driver));
        }
        if (r.forceShare()) {
            options.put("force-share", "on");
        }
        c.options = options;
        Map<String, String> given = new LinkedHashMap<>(options.remaining());
        if (onHostDevice(r, c.filename, options)) {
            options.put("file.driver", "host_device");
        }
        settings.accept(c); // last: a command may add node options too (rebase -u's backing=null)
        Drive drive = openDrive(c, tuning.opener() != null ? tuning.opener() : DriveOpener.standard());
        return new Opened(drive, ImageName.of(r, hostFile(drive.root()), given));
    }

    /**
     * Whether the image's file is a character or block device that QEMU would
     * open through host_device: its bdrv_find_protocol probes devices when
     * neither the name ("file:"), the format (-f file) nor the options
     * (file.driver) name the protocol. GraphOpener always picks "file"
     * (reported), so the choice is made here.
     */
    private static boolean onHostDevice(Request r, String plainPath, NodeOptions options) {
        if (options.has("file.driver")) {
            return false;
        }
        if (plainPath != null) {
            // A plain name with no protocol prefix is opened as given; "file:x" or -f file name the protocol.
            return plainPath.equals(r.name()) && !"file".equals(r.format()) && io.jblock.protocol.FileDriver.isHostDevice(plainPath);
        }
        String child = options.peek("file.filename");
        return child != null && io.jblock.protocol.FileDriver.isHostDevice(child);
    }

    private static boolean isPlainName(Request r) {
        return !r.imageOpts() && !JsonOptions.isJson(r.name());
    }

    /** The node options the command line gives: --image-opts (already parsed), json:{...}, or just -f. */
    private static NodeOptions optionsFor(Request r, LinkedHashMap<String, String> imageOpts) throws BlockException {
        NodeOptions options;
        if (imageOpts != null) {
            options = new NodeOptions(imageOpts);
            String reference = options.peek("file");
            if (reference != null) {
                // A bare "file" names an existing node, and qemu-img has no other node to name.
                throw new BlockException(Errno.ENODEV, "Cannot find device='" + reference + "' nor node-name='"
                        + reference + "'");
            }
            return options;
        }
        options = new NodeOptions(JsonOptions.isJson(r.name()) ? JsonOptions.parse(r.name()) : new LinkedHashMap<>());
        if (r.format() != null) {
            options.put("driver", r.format());
        }
        return options;
    }

    private static Drive openDrive(DriveConfig c, DriveOpener opener) throws BlockException {
        try {
            return opener.open(c);
        } catch (BlockException e) {
            // FileDriver words a missing name its own way; qemu's text is this (reported, to move into FileDriver).
            if ("Parameter 'filename' is missing".equals(e.getMessage())) {
                throw new BlockException(e.errno(), "The 'file' block driver requires a file name");
            }
            throw e;
        }
    }

    /**
     * The file protocol's own checks on a plain name, made before anything is
     * opened or probed. Returns the name to open, "file:" removed (GraphOpener
     * keeps the prefix in file.filename when a format is named).
     */
    private static String checkFileName(String name, String format, boolean readOnly) throws BlockException {
        // A named file driver takes the name as it is (it only drops "file:"); others look for a protocol.
        String protocol = "file".equals(format) ? (name.startsWith("file:") ? "file" : null)
                : QemuFormats.protocolPrefix(name);
        String path = name;
        if ("blkdebug".equals(protocol)) {
            // A protocol jblock has: "blkdebug:[CONFIG]:IMAGE" goes to the graph opener as it is.
            return name;
        }
        if (protocol != null) {
            if (!protocol.equals("file")) {
                throw new BlockException(Errno.ENOTSUP, QemuFormats.QEMU_PROTOCOLS.contains(protocol)
                        ? "the '" + protocol + "' protocol is not available yet in this version of jblock"
                        : "Unknown protocol '" + protocol + "'");
            }
            path = name.substring(5);
        }
        if (path.isEmpty()) {
            throw new BlockException(Errno.EINVAL, "The 'file' block driver requires a file name");
        }
        Path p = Path.of(path);
        // QEMU opens devices through host_device, unless the file protocol is named ("file:", -f file).
        boolean hostDevice = protocol == null && !"file".equals(format) && io.jblock.protocol.FileDriver.isHostDevice(path);
        if (!readOnly && Files.isDirectory(p)) {
            // Opening for writing fails in open(2) itself, before QEMU looks at the kind of file.
            throw new BlockException(Errno.EISDIR, "Could not open '" + path + "': Is a directory");
        }
        if (Files.exists(p) && !Files.isRegularFile(p) && !hostDevice) {
            throw new BlockException(Errno.EINVAL, "'file' driver requires '" + path + "' to be a regular file");
        }
        return path;
    }

    /**
     * QEMU's BDRV_O_NO_BACKING, as a {@code settings} step: a qcow2 image is
     * opened without its backing file (backing=null), so a missing or looping
     * backing file does not stop the command. Formats without backing files
     * (raw) are left alone, as QEMU ignores the flag for them; a probed plain
     * file is probed here the same way GraphOpener will. A "backing" the user
     * gave stands; backing.* options are then left over, and refused as QEMU
     * refuses them under NO_BACKING ("does not support the option").
     */
    static void withoutBacking(DriveConfig c) {
        NodeOptions options = c.options;
        if (options.has("backing")) {
            return;
        }
        String driver = options.peek("driver");
        if (driver == null && c.filename != null) {
            String file = c.filename;
            if (file.startsWith("blkdebug:") && file.indexOf(':', 9) >= 0) {
                file = file.substring(file.indexOf(':', 9) + 1); // "blkdebug:[CONFIG]:IMAGE": the format is IMAGE's
            }
            driver = magicFormat(Path.of(file));
        }
        if ("qcow2".equals(driver)) {
            options.put("backing", null);
        }
    }

    /** The format a probe finds in the file: qcow2 by its magic, else raw (also when unreadable). */
    private static String magicFormat(Path file) {
        try (var in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            if (magic.length == 4 && java.nio.ByteBuffer.wrap(magic).getInt() == 0x514649fb) {
                return "qcow2";
            }
        } catch (java.io.IOException | RuntimeException e) {
            // Unreadable: leave it to the open to report, with raw as QEMU's fallback.
        }
        return "raw";
    }

    /**
     * QEMU probes the format when only the file child is described
     * ({@code file.filename=x}); GraphOpener does not yet (reported), so the
     * format is guessed here the same way: the qcow2 magic, else raw.
     */
    private static void probeOnFileChild(NodeOptions options) {
        String driver = options.peek("file.driver");
        String name = options.peek("file.filename");
        if (name == null || (driver != null && !driver.equals("file"))) {
            return;
        }
        options.put("driver", magicFormat(Path.of(name)));
    }

    /** The host file at the bottom of the graph, following "file" children. */
    private static Path hostFile(BlockNode node) {
        BlockNode n = node;
        while (n != null) {
            if (n instanceof FileNode f) {
                return f.path();
            }
            n = n.child("file");
        }
        return null;
    }
}
