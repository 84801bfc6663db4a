package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.CacheOptions;
import io.jblock.block.DiscardMode;
import io.jblock.block.Prealloc;
import io.jblock.format.qcow2.Qcow2Amend;
import io.jblock.format.qcow2.Qcow2Node;
import io.jblock.options.CacheModes;
import io.jblock.options.KeyValueParser;

import java.util.List;
import java.util.Objects;

/**
 * {@code amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt]
 * [-t cache] [--force] -o options filename}: changes the options of an
 * existing image, as qemu-img 7.2's img_amend and qcow2_amend_options do.
 * Only qcow2 can be amended; raw and the other formats are refused with
 * QEMU's message.
 *
 * <p>The options are checked first, in the order of the format's option
 * list (so the first bad one is the one QEMU names), then applied in QEMU's
 * order: upgrade to version 3, the refcount width, the header (data file
 * name and data-file-raw), the backing file (which amend cannot change:
 * it is refused once the header was written, as QEMU refuses it), lazy
 * refcounts, the size, and last the downgrade to version 2.
 */
final class AmendCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    private static final int OPTION_FORCE = 258;

    /** qcow2's amend options (QEMU's qcow2_amend_opts), in its order. */
    static final List<CreateOptions.Desc> QCOW2 = List.of(
            new CreateOptions.Desc("encrypt.state", CreateOptions.Type.STRING,
                    "Select new state of affected keyslots (active/inactive)"),
            new CreateOptions.Desc("encrypt.keyslot", CreateOptions.Type.NUMBER,
                    "Select a single keyslot to modify explicitly"),
            new CreateOptions.Desc("encrypt.old-secret", CreateOptions.Type.STRING,
                    "Select all keyslots that match this password"),
            new CreateOptions.Desc("encrypt.new-secret", CreateOptions.Type.STRING,
                    "New secret to set in the matching keyslots. Empty string to erase"),
            new CreateOptions.Desc("encrypt.iter-time", CreateOptions.Type.NUMBER,
                    "Time to spend in PBKDF in milliseconds"),
            CreateOptions.SIZE,
            new CreateOptions.Desc("compat", CreateOptions.Type.STRING, "Compatibility level (v2 [0.10] or v3 [1.1])"),
            new CreateOptions.Desc("backing_file", CreateOptions.Type.STRING, "File name of a base image"),
            new CreateOptions.Desc("backing_fmt", CreateOptions.Type.STRING, "Image format of the base image"),
            new CreateOptions.Desc("data_file", CreateOptions.Type.STRING, "File name of an external data file"),
            new CreateOptions.Desc("data_file_raw", CreateOptions.Type.BOOL,
                    "The external data file must stay valid as a raw image"),
            new CreateOptions.Desc("lazy_refcounts", CreateOptions.Type.BOOL, "Postpone refcount updates", "off"),
            new CreateOptions.Desc("refcount_bits", CreateOptions.Type.NUMBER,
                    "Width of a reference count entry in bits", "16"));

    /** luks's amend options (QEMU's block_crypto_amend_opts_luks); jblock has no luks driver yet. */
    static final List<CreateOptions.Desc> LUKS = List.of(
            new CreateOptions.Desc("state", CreateOptions.Type.STRING,
                    "Select new state of affected keyslots (active/inactive)"),
            new CreateOptions.Desc("keyslot", CreateOptions.Type.NUMBER, "Select a single keyslot to modify explicitly"),
            new CreateOptions.Desc("old-secret", CreateOptions.Type.STRING, "Select all keyslots that match this password"),
            new CreateOptions.Desc("new-secret", CreateOptions.Type.STRING,
                    "New secret to set in the matching keyslots. Empty string to erase"),
            new CreateOptions.Desc("iter-time", CreateOptions.Type.NUMBER, "Time to spend in PBKDF in milliseconds"));

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String options = null;
        String fmt = null;
        String cache = "writeback";
        boolean progress = false;
        boolean quiet = false;
        boolean imageOpts = false;
        CommandLine cl = new CommandLine(ctx, args, ":ho:f:t:pq", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("object", OPTION_OBJECT), CommandLine.flag("image-opts", OPTION_IMAGE_OPTS),
                CommandLine.flag("force", OPTION_FORCE));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'o' -> {
                    String arg = cl.optarg();
                    if (!CreateOptions.isValidList(arg)) {
                        throw ctx.fail("Invalid option list: " + arg);
                    }
                    options = options == null ? arg : options + "," + arg;
                }
                case 'f' -> fmt = cl.optarg();
                case 't' -> cache = cl.optarg();
                case 'p' -> progress = true;
                case 'q' -> quiet = true;
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                case OPTION_FORCE -> {
                    // Only encryption options use --force in QEMU; jblock has no encryption to amend.
                }
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (options == null) {
            throw ctx.usageError("Must specify options (-o)");
        }
        Progress meter = new Progress(ctx.out(), progress && !quiet, 1.0f);
        try {
            return amend(ctx, meter, cl.operands(), options, fmt, cache, imageOpts);
        } finally {
            meter.end();
        }
    }

    private static int amend(ImgContext ctx, Progress meter, List<String> operands, String options, String fmt,
                             String cacheName, boolean imageOpts) throws ImgExit {
        boolean help = KeyValueParser.hasHelpOption(options);
        if (fmt != null && help) {
            return printHelp(ctx, fmt);
        }
        if (operands.size() != 1) {
            throw ctx.fail("Expecting one image file name");
        }
        String filename = operands.getFirst();
        CacheOptions cache = CacheModes.parseQemu(cacheName).orElse(null);
        if (cache == null) {
            throw ctx.fail("Invalid cache option: " + cacheName);
        }
        ImageOpener.Request request = new ImageOpener.Request(filename, fmt, imageOpts, false, false);
        ImageOpener.Tuning tuning = new ImageOpener.Tuning(cache, DiscardMode.IGNORE);
        ImageOpener.Opened[] image = {ImageOpener.open(ctx, request, tuning)};
        try {
            BlockNode root = image[0].drive().root();
            String format = root.driverName();
            if (help) {
                return printHelp(ctx, format);
            }
            if (!(root instanceof Qcow2Node node)) {
                throw ctx.fail("Format driver '" + format + "' does not support option amendment");
            }
            CreateOptions opts = parse(ctx, options);
            meter.print(0f, 0);
            new Qcow2Amendment(ctx, node, opts, meter, () -> ImageOpener.open(ctx, request, tuning)).run(image);
            meter.print(100f, 0);
            return 0;
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        } finally {
            try {
                if (image[0] != null) {
                    image[0].close();
                }
            } catch (BlockException e) {
                ctx.error(e.getMessage());
            }
        }
    }

    private static CreateOptions parse(ImgContext ctx, String text) throws ImgExit {
        CreateOptions opts = new CreateOptions(QCOW2);
        try {
            opts.parse(text, ctx::warn);
            return opts;
        } catch (CreateOptions.Invalid e) {
            boolean creation;
            try {
                new CreateOptions(CreateOptions.append(QCOW2, CreateOptions.QCOW2)).parse(text, w -> { });
                creation = true;
            } catch (CreateOptions.Invalid again) {
                creation = false;
            }
            ctx.error(e.getMessage());
            if (creation) {
                ctx.err().print("This option is only supported for image creation\n");
            }
            throw new ImgExit(1);
        }
    }

    /** QEMU's print_amend_option_help. */
    private static int printHelp(ImgContext ctx, String format) throws ImgExit {
        List<CreateOptions.Desc> descs = switch (format) {
            case "qcow2" -> QCOW2;
            case "luks" -> LUKS;
            default -> null;
        };
        if (descs == null) {
            if (!QemuFormats.QEMU_DRIVERS.contains(format)) {
                throw ctx.fail("Unknown file format '" + format + "'");
            }
            throw ctx.fail("Format driver '" + format + "' does not support option amendment");
        }
        ctx.out().print("Amend options for '" + format + "':\n" + CreateOptions.help(descs));
        return 0;
    }

    /** Reopens the image (after the refcount width changed under the open node). */
    private interface Reopen {
        ImageOpener.Opened open() throws ImgExit;
    }

    /**
     * One run of qcow2_amend_options: the options read and checked in the
     * order of {@link #QCOW2}, then applied.
     */
    private static final class Qcow2Amendment {
        private final ImgContext ctx;
        private final CreateOptions opts;
        private final Progress meter;
        private final Reopen reopen;
        private Qcow2Amend amend;

        private int operations;
        private int completed;
        private long offsetCompleted;
        private String current;
        private String last;
        private long lastWorkSize;

        Qcow2Amendment(ImgContext ctx, Qcow2Node node, CreateOptions opts, Progress meter, Reopen reopen)
                throws BlockException {
            this.ctx = ctx;
            this.opts = opts;
            this.meter = meter;
            this.reopen = reopen;
            this.amend = node.amendment();
        }

        /** Runs the amendment; {@code image[0]} is the image open now (it may be opened again on the way). */
        void run(ImageOpener.Opened[] image) throws BlockException, ImgExit {
            int oldVersion = amend.version();
            int newVersion = oldVersion;
            long newSize = 0;
            String backingFile = null;
            String backingFormat = null;
            String dataFile = null;
            boolean lazy = amend.lazyRefcounts();
            boolean dataFileRaw = amend.dataFileRaw();
            int oldBits = amend.refcountBits();
            int bits = oldBits;
            for (CreateOptions.Desc d : QCOW2) {
                String name = d.name();
                if (!opts.has(name)) {
                    continue;
                }
                String text = opts.text(name);
                switch (name) {
                    case "compat" -> {
                        switch (text) {
                            case "0.10", "v2" -> newVersion = 2;
                            case "1.1", "v3" -> newVersion = 3;
                            default -> throw fail("Unknown compatibility level " + text);
                        }
                    }
                    case "size" -> newSize = opts.size("size", 0);
                    case "backing_file" -> backingFile = text;
                    case "backing_fmt" -> backingFormat = text;
                    case "lazy_refcounts" -> lazy = opts.bool(name, lazy);
                    case "refcount_bits" -> {
                        // QEMU keeps the number in an int: only its low 32 bits count.
                        bits = (int) Long.parseLong(opts.valuesOf(List.of(d)).get(name));
                        if (bits <= 0 || bits > 64 || Integer.bitCount(bits) != 1) {
                            throw fail("Refcount width must be a power of two and may not exceed 64 bits");
                        }
                    }
                    case "data_file" -> {
                        dataFile = text;
                        if (!amend.hasDataFile()) {
                            throw fail("data-file can only be set for images that use an external data file");
                        }
                    }
                    case "data_file_raw" -> {
                        dataFileRaw = opts.bool(name, dataFileRaw);
                        if (dataFileRaw && !amend.dataFileRaw()) {
                            throw fail("data-file-raw cannot be set on existing images");
                        }
                    }
                    default -> {
                        // encrypt.*
                        if (!amend.encrypted()) {
                            throw fail("Can't amend encryption options - encryption not present");
                        }
                        if (!amend.luksEncrypted()) {
                            throw fail("Only LUKS encryption options can be amended");
                        }
                        throw fail("amending LUKS encryption options is not available yet in this version of"
                                + " jblock");
                    }
                }
            }
            operations = (newVersion != oldVersion ? 1 : 0) + (bits != oldBits ? 1 : 0);

            if (newVersion > oldVersion) {
                current = "upgrade";
                amend.upgrade(this::status);
            }
            if (bits != oldBits) {
                if (newVersion < 3 && bits != 16) {
                    throw fail("Refcount widths other than 16 bits require compatibility level 1.1 or above (use"
                            + " compat=1.1 or greater)");
                }
                current = "refcount order";
                amend.changeRefcountBits(bits, this::status);
                // The open node's refcount structures are the old ones: go on with the image opened again.
                ImageOpener.Opened old = image[0];
                image[0] = null;
                old.close();
                image[0] = reopen.open();
                if (!(image[0].drive().root() instanceof Qcow2Node again)) {
                    throw fail("the image is no longer qcow2 after changing its refcount width");
                }
                amend = again.amendment();
            }
            amend.updateHeader(dataFileRaw, dataFile);
            if (backingFile != null || backingFormat != null) {
                if (!Objects.equals(backingFile, amend.backingFile())
                        || !Objects.equals(backingFormat, amend.backingFormat())) {
                    ctx.error("Cannot amend the backing file");
                    ctx.err().print("You can use 'qemu-img rebase' instead.\n");
                    throw new ImgExit(1);
                }
            }
            if (lazy != amend.lazyRefcounts()) {
                if (lazy && newVersion < 3) {
                    throw fail("Lazy refcounts only supported with compatibility level 1.1 and above (use"
                            + " compat=1.1 or greater)");
                }
                amend.setLazyRefcounts(lazy);
            }
            if (newSize != 0) {
                // Amend wants exactly this size (qemu-img's blk_truncate with exact=true, no preallocation).
                image[0].drive().truncate(newSize, true, Prealloc.OFF);
            }
            if (newVersion < oldVersion) {
                current = "downgrade";
                amend.downgrade(this::status);
            }
        }

        private ImgExit fail(String message) {
            return ctx.fail(message);
        }

        /**
         * QEMU's qcow2_amend_helper_cb: the operations run so far are
         * summed, the ones still to run projected from them, and the
         * whole printed as one percentage.
         */
        private void status(long offset, long workSize) {
            if (!Objects.equals(current, last)) {
                if (last != null) {
                    offsetCompleted += lastWorkSize;
                    completed++;
                }
                last = current;
            }
            if (operations <= 0) {
                return;
            }
            lastWorkSize = workSize;
            long currentWork = offsetCompleted + workSize;
            long projected = currentWork * (operations - completed - 1) / (completed + 1);
            meter.print(100f * (float) (offsetCompleted + offset) / (float) (currentWork + projected), 0);
        }
    }
}
