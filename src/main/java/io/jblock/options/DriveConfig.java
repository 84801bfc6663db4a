package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.CacheOptions;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;

import java.util.LinkedHashMap;

/**
 * Everything needed to open a drive: the file name (a path, or json:{...}),
 * the node options (format and dotted keys), and the drive-level settings a
 * tool's flags set. A tool fills one from its command line; {@link #parseDrive}
 * fills one from a {@code -drive} string.
 *
 * <p>Explicit {@code cache.direct}, {@code cache.no-flush} and
 * {@code cache.writeback} keys in {@code options} win over {@code cache}.
 */
public final class DriveConfig {
    public String id = "";
    /** A path, json:{...}, or null when the options say it all (--image-opts, --blockdev). */
    public String filename;
    public NodeOptions options = new NodeOptions(new LinkedHashMap<>());
    public CacheOptions cache = CacheOptions.WRITEBACK;
    public boolean readOnly;
    public boolean snapshot;
    public DiscardMode discard = DiscardMode.IGNORE;
    public DetectZeroes detectZeroes = DetectZeroes.OFF;
    public AioMode aio = AioMode.THREADS;
    /** Whether a format may be guessed from the contents when none is given. */
    public boolean allowProbe = true;
    /** Prints QEMU's warning when probing guessed raw; the tool decides where it goes. */
    public java.util.function.Consumer<String> warnings = w -> { };

    /**
     * Parses a {@code -drive} string: {@code file=PATH,format=FMT,cache=MODE,...}.
     * Keys the drive understands are taken here, the rest go to the node.
     */
    public static DriveConfig parseDrive(String text) throws BlockException {
        LinkedHashMap<String, String> kv = KeyValueParser.parse(text, null);
        DriveConfig c = new DriveConfig();
        NodeOptions o = new NodeOptions(kv);
        c.filename = o.take("file").orElse(null);
        c.id = o.take("id").orElse("");
        String format = o.take("format").orElse(null);
        String driver = o.peek("driver");
        if (format != null) {
            if (driver != null) {
                throw new BlockException(Errno.EINVAL, "Cannot specify both 'driver' and 'format'");
            }
            o.put("driver", format);
        }
        if (o.has("read-only") && o.has("readonly")) {
            throw new BlockException(Errno.EINVAL, "'read-only' and its alias 'readonly' can't be used together");
        }
        Boolean ro = o.takeBool("read-only").orElse(null);
        if (ro == null) {
            ro = o.takeBool("readonly").orElse(false);
        }
        c.readOnly = ro;
        c.snapshot = o.takeBool("snapshot").orElse(false);
        String cache = o.take("cache").orElse(null);
        if (cache != null) {
            c.cache = CacheModes.parse(cache).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "invalid cache option"));
        }
        String discard = o.take("discard").orElse(null);
        if (discard != null) {
            c.discard = io.jblock.block.Choice.parse(DiscardMode.class, discard).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "Invalid discard option"));
        }
        String dz = o.take("detect-zeroes").orElse(null);
        if (dz != null) {
            c.detectZeroes = io.jblock.block.Choice.parse(DetectZeroes.class, dz).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "Parameter 'detect-zeroes' does not accept value '"
                            + dz + "'"));
        }
        String aio = o.take("aio").orElse(null);
        if (aio != null) {
            c.aio = io.jblock.block.Choice.parse(AioMode.class, aio).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, "invalid aio option"));
        }
        c.options = o;
        return c;
    }
}
