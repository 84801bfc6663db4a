package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Choice;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;
import io.jblock.engine.ErrnoException;
import io.jblock.engine.IoEngine;
import io.jblock.engine.IoUringEngine;
import io.jblock.engine.ThreadsEngine;
import io.jblock.format.RawNode;
import io.jblock.protocol.FileNode;

import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Opens a node graph from dotted options, following QEMU 7.2's bdrv_open
 * (block.c: bdrv_open_inherit, bdrv_fill_options, bdrv_open_common):
 *
 * <ol>
 *   <li>A {@code json:} file name is parsed and joined under the options
 *       (options given beside it win).</li>
 *   <li>The driver is {@code driver=} if given ("Unknown driver 'foo'").
 *       A node at the protocol level (a driver that is a protocol, or a child
 *       opened for its parent's "file" with no driver) takes the file name as
 *       its {@code filename} ("Can't specify 'file' and 'filename' options at
 *       the same time" when both are there); without a driver its protocol
 *       comes from the name's {@code proto:} prefix, only when the name was
 *       given as a file name rather than as {@code filename=} ("Unknown
 *       protocol 'foo'"), and {@code file:} is stripped.</li>
 *   <li>A node at the format level opens its "file" child first, from the
 *       file name or the {@code file.*} keys; with no driver, the format is
 *       probed from that child (only the root is ever probed: children have
 *       no format level unless a driver is named). Neither a driver nor a
 *       file: "Must specify either driver or file".</li>
 *   <li>The node's own settings: read-only, auto-read-only, cache.direct,
 *       cache.no-flush, force-share (booleans), discard, detect-zeroes,
 *       node-name, with QEMU's messages.</li>
 *   <li>Keys no one took: "Block format 'raw' does not support the option
 *       'foo'" or "Block protocol 'file' doesn't support the option 'foo'".</li>
 * </ol>
 *
 * <p>Inheritance (bdrv_inherited_options): a child takes read-only,
 * auto-read-only, cache.direct and cache.no-flush from its parent unless it
 * sets them; a "backing" child defaults to read-only; every child defaults
 * to discard=unmap (the parent already dropped the discards it ignores);
 * detect-zeroes is not inherited.
 *
 * <p>A child given as a string ({@code file=node0}) is a reference to an
 * existing node in QEMU; jblock opens every graph whole, so such references
 * fail with QEMU's message for an unknown node.
 *
 * <p>Not thread-safe: one graph opens at a time.
 */
public final class GraphOpener implements OpenContext {
    /** QEMU's node names live in a 32-byte buffer with its terminating NUL. */
    private static final int MAX_NODE_NAME = 31;

    private final DriverRegistry registry;
    private final EngineProvider engines;
    private AioMode defaultAio = AioMode.THREADS;
    private boolean allowProbe = true;
    private Consumer<String> warnings = w -> { };
    /** "file" children opened before their parent's driver (for probing), waiting to be claimed. */
    private final Map<NodeOptions, BlockNode> preopened = new IdentityHashMap<>();
    /** detect-zeroes the last root was opened with, for the drive on top of it. */
    private DetectZeroes rootDetectZeroes = DetectZeroes.OFF;
    /** Node names used in the graph being opened. */
    private final Set<String> names = new HashSet<>();
    /** Nodes of the graph being opened that have force-share=on, given or inherited. */
    private final Set<String> forceShared = new HashSet<>();
    /** What the tool does with the root, for the image locks. */
    private ImageUse use = ImageUse.DEFAULT;
    /** The graph is opened for a check (BDRV_O_CHECK). */
    private boolean checkMode;

    /** Chooses the engine for an aio mode; tests swap in an instrumented one. */
    @FunctionalInterface
    public interface EngineProvider {
        IoEngine engine(AioMode mode) throws BlockException;
    }

    public GraphOpener(DriverRegistry registry, EngineProvider engines) {
        this.registry = registry;
        this.engines = engines;
    }

    /** The standard drivers and engines. */
    public static GraphOpener standard() {
        return new GraphOpener(DriverRegistry.standard(), GraphOpener::standardEngine);
    }

    public static IoEngine standardEngine(AioMode mode) throws BlockException {
        return switch (mode) {
            case THREADS -> ThreadsEngine.INSTANCE;
            // jblock has no Linux AIO: native is served by io_uring (FileDriver has already required O_DIRECT).
            case NATIVE, IO_URING -> {
                try {
                    yield IoUringEngine.instance();
                } catch (ErrnoException e) {
                    // QEMU 7.2's words when its ring cannot be set up (ENOSYS, or EPERM under seccomp): no reason
                    // follows, as liburing leaves errno alone. QEMU's native AIO has no such case; jblock's
                    // depends on io_uring, so it says so, and why.
                    throw new BlockException(Errno.of(e.errno()), mode == AioMode.IO_URING
                            ? "Unable to use io_uring: failed to init linux io_uring ring"
                            : "Unable to use native AIO: failed to init linux io_uring ring: " + e.reason());
                }
            }
        };
    }

    /** The registry this opener finds drivers in. */
    public DriverRegistry registry() {
        return registry;
    }

    /** The aio mode of file nodes that do not set {@code aio=} (the tool's {@code -i}/{@code --aio}). */
    public GraphOpener defaultAio(AioMode aio) {
        this.defaultAio = aio;
        return this;
    }

    /** Whether a root without a driver may have its format probed; when not, the root is the protocol node. */
    public GraphOpener allowProbe(boolean allow) {
        this.allowProbe = allow;
        return this;
    }

    /** What the tool does with the roots it opens next, which decides the image locks they take. */
    public GraphOpener use(ImageUse use) {
        this.use = java.util.Objects.requireNonNull(use, "use");
        return this;
    }

    /** Whether the graphs opened next are opened to be checked (see {@link OpenContext#checkMode}). */
    public GraphOpener checkMode(boolean check) {
        this.checkMode = check;
        return this;
    }

    @Override
    public boolean checkMode() {
        return checkMode;
    }

    /** Where QEMU's warning about probed raw images goes. */
    public GraphOpener warnings(Consumer<String> sink) {
        this.warnings = sink;
        return this;
    }

    @Override
    public java.util.Map<String, String> jsonOptions(String jsonName) throws BlockException {
        return JsonOptions.parse(jsonName);
    }

    @Override
    public IoEngine engine(AioMode mode) throws BlockException {
        return engines.engine(mode);
    }

    /** The detect-zeroes mode the root of the last graph set on itself ({@code OFF} when none). */
    public DetectZeroes rootDetectZeroes() {
        return rootDetectZeroes;
    }

    /**
     * Opens the root of a graph.
     *
     * @param filename  a path, json:{...}, or null when {@code options} say it all
     * @param options   dotted node options; taken as the graph opens
     * @param inherited the settings the root starts from (read-only, cache, discard from the tool)
     */
    public BlockNode open(String filename, NodeOptions options, NodeSettings inherited) throws BlockException {
        names.clear();
        forceShared.clear();
        preopened.clear();
        rootDetectZeroes = DetectZeroes.OFF;
        try {
            BlockNode root = openNode(filename, options, inherited, false, true);
            try {
                GraphPermissions.apply(root, use.permissions(root.isReadOnly()), forceShared);
            } catch (BlockException e) {
                root.close();
                throw e;
            }
            return root;
        } finally {
            names.clear();
            forceShared.clear();
            for (BlockNode orphan : preopened.values()) {
                orphan.close();
            }
            preopened.clear();
        }
    }

    /**
     * @param protocolLevel the node is opened for its parent's "file" (QEMU's BDRV_O_PROTOCOL)
     * @param root          the node is the root, the only one whose format may be probed
     */
    private BlockNode openNode(String filename, NodeOptions options, NodeSettings inherited,
                               boolean protocolLevel, boolean root) throws BlockException {
        if (filename != null && JsonOptions.isJson(filename)) {
            NodeOptions merged = new NodeOptions(JsonOptions.parse(filename));
            options.remaining().forEach(merged::put);
            options = merged;
            filename = null;
        }
        String driverName = options.take("driver").orElse(null);
        BlockDriver driver = null;
        boolean protocol = protocolLevel || (root && driverName == null && !allowProbe);
        if (driverName != null) {
            driver = registry.find(driverName).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "Unknown driver '" + driverName + "'"));
            protocol = driver.isProtocol();
        }
        boolean parseFilename = false;
        if (protocol && filename != null) {
            if (options.has("filename")) {
                throw new BlockException(Errno.EINVAL,
                        "Can't specify 'file' and 'filename' options at the same time");
            }
            options.put("filename", filename);
            parseFilename = true;
        }
        if (driver == null && protocol) {
            String name = options.peek("filename");
            if (name == null) {
                throw new BlockException(Errno.EINVAL, "Must specify either driver or file");
            }
            driver = protocolFor(name, parseFilename);
        }

        NodeSettings settings = settingsFor(options, inherited);
        DetectZeroes dz = detectZeroesFor(options, settings);
        claimName(settings.nodeName(), options);

        BlockNode node;
        if (protocol) {
            if (parseFilename && driver.name().equals("file")) {
                options.put("filename", stripPrefix(options.peek("filename"), "file:"));
            }
            if (driver.name().equals("file")) {
                String name = options.peek("filename");
                if (name == null || name.isEmpty()) {
                    throw new BlockException(Errno.EINVAL, "The 'file' block driver requires a file name");
                }
                options.putDefault("aio", defaultAio.canonicalName());
            }
            node = driver.open(settings, options, this);
        } else {
            BlockNode file = openChild("file", options, settings, filename);
            boolean probed = false;
            if (driver == null) {
                if (file == null) {
                    throw new BlockException(Errno.EINVAL, "Must specify either driver or file");
                }
                driver = probe(file, filename);
                probed = true;
                if (driver.name().equals("raw") && options.has("backing") && options.peek("backing") == null) {
                    options.take("backing"); // "no backing file" (QEMU's BDRV_O_NO_BACKING) means nothing to raw
                }
            }
            if (file != null) {
                preopened.put(options, file);
            }
            try {
                node = driver.open(settings, options, this);
            } catch (BlockException e) {
                BlockNode unclaimed = preopened.remove(options);
                if (unclaimed != null) {
                    unclaimed.close();
                }
                throw e;
            }
            BlockNode unclaimed = preopened.remove(options);
            if (unclaimed != null) {
                unclaimed.close();
                options.put("file", unclaimed.nodeName()); // the driver took no "file": QEMU names the leftover
            }
            if (probed && node instanceof RawNode raw) {
                raw.markProbed(); // the image guessed raw: writes must not make it guess otherwise
            }
        }
        String leftover = options.firstRemainingKey();
        if (leftover != null) {
            node.close();
            throw new BlockException(Errno.EINVAL, driver.isProtocol()
                    ? "Block protocol '" + driver.name() + "' doesn't support the option '" + leftover + "'"
                    : "Block format '" + driver.name() + "' does not support the option '" + leftover + "'");
        }
        if (root) {
            rootDetectZeroes = dz;
        }
        return node;
    }

    @Override
    public BlockNode openChild(String role, NodeOptions parentOptions, NodeSettings parentSettings)
            throws BlockException {
        if (role.equals("file")) {
            BlockNode early = preopened.remove(parentOptions);
            if (early != null) {
                return early;
            }
        }
        return openChild(role, parentOptions, parentSettings, null);
    }

    /** bdrv_open_child: the {@code role.*} keys, a reference {@code role=name}, or the parent's file name. */
    private BlockNode openChild(String role, NodeOptions parentOptions, NodeSettings parentSettings,
                                String filename) throws BlockException {
        NodeOptions childOptions = parentOptions.takeChild(role);
        boolean hasReference = parentOptions.has(role);
        String reference = parentOptions.take(role).orElse(null);
        if (reference != null) {
            if (filename != null || !childOptions.isEmpty()) {
                throw new BlockException(Errno.EINVAL,
                        "Cannot reference an existing block device with additional options or a new filename");
            }
            throw new BlockException(Errno.ENODEV,
                    "Cannot find device='" + reference + "' nor node-name='" + reference + "'");
        }
        if (filename == null && childOptions.isEmpty()) {
            if (hasReference) {
                parentOptions.put(role, null); // {} or null given for the child: QEMU keeps it as a leftover
            }
            return null;
        }
        if (forceShared.contains(parentSettings.nodeName()) && !childOptions.has("force-share")) {
            childOptions.put("force-share", "on"); // inherited, as bdrv_inherited_options does
        }
        boolean backing = role.equals("backing");
        NodeSettings inherited = new NodeSettings(NodeSettings.autoName(),
                backing || parentSettings.readOnly(), parentSettings.direct(), parentSettings.noFlush(),
                DiscardMode.UNMAP);
        // blkdebug's "image" and blklogwrites' "log" are opened at the protocol level, as QEMU does.
        boolean protocolLevel = role.equals("file") || role.equals("image") || role.equals("log");
        return openNode(filename, childOptions, inherited, protocolLevel, false);
    }

    /** bdrv_open_common's generic options, with its messages. */
    private NodeSettings settingsFor(NodeOptions o, NodeSettings inherited) throws BlockException {
        boolean ro = o.takeBool("read-only").orElse(inherited.readOnly());
        o.takeBool("auto-read-only"); // jblock never falls back to read-only by itself
        boolean direct = o.takeBool("cache.direct").orElse(inherited.direct());
        boolean noFlush = o.takeBool("cache.no-flush").orElse(inherited.noFlush());
        boolean forceShare = o.takeBool("force-share").orElse(false);
        if (forceShare && !ro) {
            throw new BlockException(Errno.EINVAL, "force-share=on can only be used with read-only images");
        }
        DiscardMode discard = inherited.discard();
        if (o.has("discard")) {
            String d = o.take("discard").orElse("");
            discard = Choice.parse(DiscardMode.class, d).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "Invalid discard option"));
        }
        String name = o.take("node-name").orElse(null);
        NodeSettings settings = new NodeSettings(name != null ? name : inherited.nodeName(), ro, direct, noFlush,
                discard);
        if (forceShare) {
            forceShared.add(settings.nodeName());
        }
        return settings;
    }

    /** bdrv_parse_detect_zeroes: an enum, and unmap only where discards pass. */
    private static DetectZeroes detectZeroesFor(NodeOptions o, NodeSettings settings) throws BlockException {
        if (!o.has("detect-zeroes")) {
            return DetectZeroes.OFF;
        }
        String v = o.take("detect-zeroes").orElse("");
        DetectZeroes dz = Choice.parse(DetectZeroes.class, v).orElseThrow(
                () -> new BlockException(Errno.EINVAL, "invalid parameter value: " + v));
        if (dz == DetectZeroes.UNMAP && settings.discard() != DiscardMode.UNMAP) {
            throw new BlockException(Errno.EINVAL, DriveMessages.DETECT_ZEROES_UNMAP_NEEDS_DISCARD);
        }
        return dz;
    }

    /** bdrv_assign_node_name: well formed, unique, short enough; generated names are always fine. */
    private void claimName(String name, NodeOptions o) throws BlockException {
        if (name.startsWith("#block")) {
            return;
        }
        if (!KeyValueParser.isIdentifier(name)) {
            throw new BlockException(Errno.EINVAL, "Invalid node-name: '" + name + "'");
        }
        if (!names.add(name)) {
            throw new BlockException(Errno.EINVAL, "Duplicate nodes with node-name='" + name + "'");
        }
        if (name.length() > MAX_NODE_NAME) {
            throw new BlockException(Errno.EINVAL, "Node name too long");
        }
    }

    /**
     * bdrv_find_protocol: a name is "proto:rest" when a colon comes before any
     * slash; only names given as file names are read that way.
     */
    private BlockDriver protocolFor(String filename, boolean allowPrefix) throws BlockException {
        int end = 0;
        while (end < filename.length() && filename.charAt(end) != ':' && filename.charAt(end) != '/') {
            end++;
        }
        if (!allowPrefix || end >= filename.length() || filename.charAt(end) != ':') {
            // No protocol named: devices go to host_device, everything else to file (bdrv_find_protocol).
            if (io.jblock.protocol.FileDriver.isHostDevice(filename)) {
                BlockDriver hostDevice = registry.find("host_device").orElse(null);
                if (hostDevice != null) {
                    return hostDevice;
                }
            }
            return registry.find("file").orElseThrow();
        }
        String prefix = filename.substring(0, end);
        String driverName = switch (prefix) {
            case "file" -> "file";
            case "nbd", "nbd+tcp", "nbd+unix" -> "nbd";
            case "blkdebug" -> "blkdebug";
            default -> null;
        };
        BlockDriver d = driverName == null ? null : registry.find(driverName).orElse(null);
        if (d == null) {
            throw new BlockException(Errno.ENOENT, "Unknown protocol '" + prefix + "'");
        }
        return d;
    }

    private static String stripPrefix(String filename, String prefix) {
        return filename.startsWith(prefix) ? filename.substring(prefix.length()) : filename;
    }

    /** Guesses the format from the file child's first bytes: qcow2 by its magic, raw otherwise. */
    private BlockDriver probe(BlockNode file, String filename) throws BlockException {
        String format;
        try {
            format = guessFormat(file);
        } catch (BlockException e) {
            file.close();
            throw e;
        }
        BlockDriver fmt = registry.find(format).orElse(null);
        if (fmt == null) {
            file.close();
            throw new BlockException(Errno.ENOTSUP, "Image format '" + format + "' is not supported yet");
        }
        if (format.equals("raw") && !file.isReadOnly()) {
            String shown = file instanceof FileNode f ? f.path().toString() : String.valueOf(filename);
            warnings.accept("WARNING: Image format was not specified for '" + shown
                    + "' and probing guessed raw.\n"
                    + "         Automatically detecting the format is dangerous for raw images, "
                    + "write operations on block 0 will be restricted.\n"
                    + "         Specify the 'raw' format explicitly to remove the restrictions.");
        }
        return fmt;
    }

    private static String guessFormat(BlockNode proto) throws BlockException {
        long len = proto.length();
        int n = (int) Math.min(len, 512);
        if (n >= 8) {
            ByteBuffer head = ByteBuffer.allocate(n);
            proto.read(0, head);
            // The magic is shared: version 1 is qcow, 2 and up qcow2. With version 0 QEMU guesses raw, and
            // a probed raw node lets such a header be written (RawNode), so it must open as raw again.
            if (head.getInt(0) == 0x514649fb && head.getInt(4) != 0) {
                return head.getInt(4) == 1 ? "qcow" : "qcow2";
            }
        }
        return "raw";
    }
}
