package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.DiscardMode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;
import io.jblock.engine.IoEngine;
import io.jblock.engine.ThreadsEngine;

import java.nio.ByteBuffer;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Opens a node graph from dotted options, as QEMU's bdrv_open does: picks
 * the driver (given, or the protocol from the file name and the format by
 * probing), resolves each node's settings with inheritance from its parent,
 * opens children through the same path, and refuses options no driver took.
 *
 * <p>Inheritance: a child takes read-only, cache.direct and cache.no-flush
 * from its parent unless it sets them itself; a "file" child defaults to
 * discard=unmap (the parent already dropped discards it ignores), a
 * "backing" child is always read-only.
 */
public final class GraphOpener implements OpenContext {
    private final DriverRegistry registry;
    private final EngineProvider engines;
    private AioMode defaultAio = AioMode.THREADS;
    private boolean allowProbe = true;
    private Consumer<String> warnings = w -> { };
    /** Protocol nodes opened early to probe a format, waiting for their parent to claim them. */
    private final Map<NodeOptions, BlockNode> preopened = new IdentityHashMap<>();

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
            case NATIVE, IO_URING -> throw new BlockException(Errno.ENOTSUP,
                    "aio=" + mode.canonicalName() + " is not available yet in this build of jblock");
        };
    }

    public GraphOpener defaultAio(AioMode aio) {
        this.defaultAio = aio;
        return this;
    }

    public GraphOpener allowProbe(boolean allow) {
        this.allowProbe = allow;
        return this;
    }

    public GraphOpener warnings(Consumer<String> sink) {
        this.warnings = sink;
        return this;
    }

    @Override
    public IoEngine engine(AioMode mode) throws BlockException {
        return engines.engine(mode);
    }

    /**
     * Opens the root of a graph.
     *
     * @param filename  a path, json:{...}, or null when {@code options} say it all
     * @param options   dotted node options; taken as the graph opens
     * @param inherited the settings the root starts from (read-only, cache, discard from the tool)
     */
    public BlockNode open(String filename, NodeOptions options, NodeSettings inherited) throws BlockException {
        return openNode(filename, options, inherited, true);
    }

    private BlockNode openNode(String filename, NodeOptions options, NodeSettings inherited, boolean probeFormat)
            throws BlockException {
        if (filename != null && JsonOptions.isJson(filename)) {
            Map<String, String> json = JsonOptions.parse(filename);
            // Options given beside json: win over what the JSON says.
            NodeOptions merged = new NodeOptions(json);
            options.remaining().forEach(merged::put);
            options = merged;
            filename = null;
        }
        if (filename == null) {
            filename = options.peek("filename");
        }
        String driverName = options.take("driver").orElse(null);
        BlockDriver driver;
        if (driverName != null) {
            driver = registry.find(driverName).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "Unknown driver '" + driverName + "'"));
        } else if (filename != null) {
            BlockDriver protocol = protocolFor(filename);
            driver = probeFormat ? probe(filename, options, inherited, protocol) : protocol;
        } else {
            throw new BlockException(Errno.EINVAL, "Must specify either driver or file");
        }

        NodeSettings settings = settingsFor(options, inherited);
        if (driver.isProtocol()) {
            if (filename != null && !options.has("filename")) {
                options.put("filename", stripProtocolPrefix(filename));
            }
            if (driver.name().equals("file")) {
                options.putDefault("aio", defaultAio.canonicalName());
            }
        } else {
            options.take("filename");
            if (filename != null && !options.has("file") && !options.hasChild("file")
                    && !preopened.containsKey(options)) {
                options.put("file.filename", filename);
            }
        }
        BlockNode node = driver.open(settings, options, this);
        String leftover = options.firstRemainingKey();
        if (leftover != null) {
            node.close();
            String what = driver.isProtocol()
                    ? "Block protocol '" + driver.name() + "' doesn't support the option '" + leftover + "'"
                    : "Block format '" + driver.name() + "' does not support the option '" + leftover + "'";
            throw new BlockException(Errno.EINVAL, what);
        }
        return node;
    }

    @Override
    public BlockNode openChild(String role, NodeOptions parentOptions, NodeSettings parentSettings)
            throws BlockException {
        BlockNode early = preopened.remove(parentOptions);
        if (early != null && role.equals("file")) {
            return early;
        }
        NodeOptions childOptions = parentOptions.takeChild(role);
        String reference = parentOptions.take(role).orElse(null);
        if (childOptions.isEmpty() && reference == null) {
            return null;
        }
        NodeSettings inherited = new NodeSettings(NodeSettings.autoName(),
                parentSettings.readOnly() || role.equals("backing"), parentSettings.direct(),
                parentSettings.noFlush(), role.equals("file") ? DiscardMode.UNMAP : parentSettings.discard());
        // A child never has its format probed: "file" children are protocols unless a driver is named.
        return openNode(reference, childOptions, inherited, false);
    }

    /** Resolves node-name, read-only, cache.direct, cache.no-flush and discard against the inherited ones. */
    private NodeSettings settingsFor(NodeOptions o, NodeSettings inherited) throws BlockException {
        String name = o.take("node-name").orElse(inherited.nodeName());
        boolean ro = o.takeBool("read-only").orElse(inherited.readOnly());
        boolean direct = o.takeBool("cache.direct").orElse(inherited.direct());
        boolean noFlush = o.takeBool("cache.no-flush").orElse(inherited.noFlush());
        String d = o.take("discard").orElse(null);
        DiscardMode discard = inherited.discard();
        if (d != null) {
            discard = io.jblock.block.Choice.parse(DiscardMode.class, d).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "Invalid discard option"));
        }
        // Accepted for compatibility; jblock takes no image locks yet and shares by default.
        o.takeBool("auto-read-only");
        o.takeBool("force-share");
        return new NodeSettings(name, ro, direct, noFlush, discard);
    }

    private BlockDriver protocolFor(String filename) throws BlockException {
        if (filename.startsWith("nbd:") || filename.startsWith("nbd+")) {
            return registry.find("nbd").orElseThrow(
                    () -> new BlockException(Errno.ENOTSUP, "Unknown protocol 'nbd'"));
        }
        return registry.find("file").orElseThrow();
    }

    private static String stripProtocolPrefix(String filename) {
        return filename.startsWith("file:") ? filename.substring(5) : filename;
    }

    /**
     * Opens the protocol node and guesses the format from its first bytes:
     * qcow2 by its magic, raw otherwise, with QEMU's warning for raw.
     */
    private BlockDriver probe(String filename, NodeOptions options, NodeSettings inherited, BlockDriver protocol)
            throws BlockException {
        if (!allowProbe) {
            return protocol;
        }
        NodeOptions protoOptions = new NodeOptions(Map.of("filename", stripProtocolPrefix(filename)));
        NodeSettings protoSettings = new NodeSettings(NodeSettings.autoName(), inherited.readOnly(),
                options.has("cache.direct") ? NodeOptions.parseBool("cache.direct", options.peek("cache.direct"))
                        : inherited.direct(),
                options.has("cache.no-flush")
                        ? NodeOptions.parseBool("cache.no-flush", options.peek("cache.no-flush"))
                        : inherited.noFlush(),
                DiscardMode.UNMAP);
        if (protocol.name().equals("file")) {
            protoOptions.put("aio", options.has("aio") ? options.peek("aio") : defaultAio.canonicalName());
        }
        BlockNode proto = protocol.open(protoSettings, protoOptions, this);
        String format;
        try {
            format = guessFormat(proto);
        } catch (BlockException e) {
            proto.close();
            throw e;
        }
        options.take("aio");
        BlockDriver fmt = registry.find(format).orElse(null);
        if (fmt == null) {
            proto.close();
            throw new BlockException(Errno.ENOTSUP, "Image format '" + format + "' is not supported yet");
        }
        if (format.equals("raw") && !inherited.readOnly()) {
            warnings.accept("WARNING: Image format was not specified for '" + filename
                    + "' and probing guessed raw.\n"
                    + "         Automatically detecting the format is dangerous for raw images, "
                    + "write operations on block 0 will be restricted.\n"
                    + "         Specify the 'raw' format explicitly to remove the restrictions.");
        }
        preopened.put(options, proto);
        return fmt;
    }

    private static String guessFormat(BlockNode proto) throws BlockException {
        long len = proto.length();
        int n = (int) Math.min(len, 512);
        if (n >= 4) {
            ByteBuffer head = ByteBuffer.allocate(n);
            proto.read(0, head);
            if (head.getInt(0) == 0x514649fb) {
                return "qcow2";
            }
        }
        return "raw";
    }
}
