package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.Choice;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.function.Consumer;

/**
 * Everything needed to open a drive: the file name (a path, or json:{...}),
 * the node options (format and dotted keys), and the drive-level settings a
 * tool's flags set. A tool fills one from its command line; {@link #parseDrive}
 * fills one from a {@code -drive} string.
 *
 * <p>Explicit {@code cache.direct} and {@code cache.no-flush} keys left in
 * {@code options} win over {@link #cache} for the root node;
 * {@code cache.writeback} is a drive setting and is folded into {@link #cache}
 * by {@link #parseDrive}.
 */
public final class DriveConfig {
    /** The bus names QEMU's {@code if=} takes; jblock attaches no guest device, so they only pass. */
    private static final List<String> BUS_TYPES =
            List.of("none", "ide", "scsi", "floppy", "pflash", "mtd", "sd", "virtio", "xen");

    public String id = "";
    /** A path, json:{...}, or null when the options say it all (--image-opts, --blockdev). */
    public String filename;
    public NodeOptions options = new NodeOptions(new LinkedHashMap<>());
    public CacheOptions cache = CacheOptions.WRITEBACK;
    public boolean readOnly;
    /** Writes go to a temporary overlay that is dropped at close; the image is opened read-only. */
    public boolean snapshot;
    public DiscardMode discard = DiscardMode.IGNORE;
    public DetectZeroes detectZeroes = DetectZeroes.OFF;
    public AioMode aio = AioMode.THREADS;
    /** What the tool does with the image, for the image locks (QEMU's permissions). */
    public ImageUse use = ImageUse.DEFAULT;
    /** Whether a format may be guessed from the contents when none is given. */
    public boolean allowProbe = true;
    /** Opened to be checked, as qemu-img check opens (BDRV_O_CHECK): see {@code OpenContext#checkMode}. */
    public boolean check;
    /** Receives QEMU's warnings (probing guessed raw, short-form booleans); the tool decides where they go. */
    public Consumer<String> warnings = w -> { };

    /** Parses a {@code -drive} string, dropping warnings. */
    public static DriveConfig parseDrive(String text) throws BlockException {
        return parseDrive(text, w -> { });
    }

    /**
     * Parses a {@code -drive} string ({@code file=PATH,format=FMT,cache=MODE,...})
     * in the order QEMU's drive_new and blockdev_init check it, so the first
     * error is the one QEMU reports. Keys the drive understands are taken
     * here; the rest go to the root node (and fail there if no driver takes
     * them). See {@link DriveMessages} for where each message comes from.
     */
    public static DriveConfig parseDrive(String text, Consumer<String> warnings) throws BlockException {
        NodeOptions o = new NodeOptions(KeyValueParser.parse(text, null, warnings));
        DriveConfig c = new DriveConfig();
        c.warnings = warnings;
        c.id = o.take("id").orElse("");

        // drive_new: legacy alias, then cache=, which only fills the cache.* keys not given.
        if (o.has("readonly")) {
            if (o.has("read-only")) {
                throw new BlockException(Errno.EINVAL, DriveMessages.READ_ONLY_ALIAS);
            }
            o.put("read-only", o.take("readonly").orElse(null));
        }
        CacheOptions cache = CacheOptions.WRITEBACK;
        if (o.has("cache")) {
            String mode = o.take("cache").orElse("");
            cache = CacheModes.parse(mode).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, DriveMessages.INVALID_CACHE));
        }

        // drive_new: the legacy options.
        String media = o.take("media").orElse(null);
        boolean cdrom = false;
        if (media != null && !media.equals("disk")) {
            if (!media.equals("cdrom")) {
                throw new BlockException(Errno.EINVAL, "'" + media + "' invalid media");
            }
            cdrom = true;
        }
        boolean readOnly = o.takeBool("read-only").orElse(false) || cdrom;
        boolean copyOnRead = o.takeBool("copy-on-read").orElse(false);
        String bus = o.take("if").orElse(null);
        if (bus != null && !BUS_TYPES.contains(bus)) {
            throw new BlockException(Errno.EINVAL, "unsupported bus type '" + bus + "'");
        }
        long busId = takeNumber(o, "bus", 0);
        long unitId = takeNumber(o, "unit", -1);
        long index = takeNumber(o, "index", -1);
        if (index != -1 && (busId != 0 || unitId != -1)) {
            throw new BlockException(Errno.EINVAL, "index cannot be used with bus and unit");
        }
        c.filename = o.take("file").orElse(null);

        // blockdev_init: the common options.
        c.snapshot = o.takeBool("snapshot").orElse(false);
        o.takeBool("stats-account-invalid");
        o.takeBool("stats-account-failed");
        Boolean writeback = o.takeBool("cache.writeback").orElse(null);
        c.cache = cache.override(writeback, null, null);
        if (!o.has("cache.direct") && cache.direct()) {
            o.put("cache.direct", "on");
        }
        if (!o.has("cache.no-flush") && cache.noFlush()) {
            o.put("cache.no-flush", "on");
        }
        if (o.has("aio")) {
            String aio = o.take("aio").orElse("");
            c.aio = Choice.parse(AioMode.class, aio).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, DriveMessages.INVALID_AIO));
        }
        if (o.has("detect-zeroes")) {
            String dz = o.take("detect-zeroes").orElse("");
            c.detectZeroes = Choice.parse(DetectZeroes.class, dz).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, DriveMessages.invalidValue(dz)));
        }
        String format = o.take("format").orElse(null);
        if (format != null) {
            if (o.has("driver")) {
                throw new BlockException(Errno.EINVAL, DriveMessages.DRIVER_AND_FORMAT);
            }
            o.put("driver", format);
        }
        takeErrorAction(o, "werror", false);
        takeErrorAction(o, "rerror", true);
        if (copyOnRead && !readOnly) {
            throw new BlockException(Errno.ENOTSUP, "copy-on-read=on is not supported by jblock");
        }

        // bdrv_open_common: discard belongs to the root node.
        if (o.has("discard")) {
            String d = o.take("discard").orElse("");
            c.discard = Choice.parse(DiscardMode.class, d).orElseThrow(
                    () -> new BlockException(Errno.EINVAL, DriveMessages.INVALID_DISCARD));
        }
        c.readOnly = readOnly;
        c.options = o;
        return c;
    }

    /** QemuOpts' number option (parse_option_number). */
    private static long takeNumber(NodeOptions o, String key, long dflt) throws BlockException {
        String v = o.take(key).orElse(null);
        if (v == null) {
            return dflt;
        }
        try {
            return Long.parseUnsignedLong(v.strip());
        } catch (NumberFormatException e) {
            throw new BlockException(Errno.EINVAL, "Parameter '" + key + "' expects a number");
        }
    }

    /** blockdev.c parse_block_error_action: validated; jblock reports every error to the caller. */
    private static void takeErrorAction(NodeOptions o, String key, boolean isRead) throws BlockException {
        String v = o.take(key).orElse(null);
        if (v == null) {
            return;
        }
        boolean ok = v.equals("ignore") || v.equals("stop") || v.equals("report") || (!isRead && v.equals("enospc"));
        if (!ok) {
            throw new BlockException(Errno.EINVAL, "'" + v + "' invalid " + (isRead ? "read" : "write")
                    + " error action");
        }
    }

    /** The cache mode named by these settings, if one has exactly them (for messages and info). */
    public java.util.Optional<CacheMode> cacheMode() {
        return CacheMode.of(cache);
    }
}
