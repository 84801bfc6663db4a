package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.ImageCreation;
import io.jblock.block.Prealloc;
import io.jblock.options.DriverRegistry;
import io.jblock.options.KeyValueParser;

import java.util.List;

/**
 * {@code create [--object objectdef] [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options]
 * filename [size]}.
 *
 * <p>The checks run in qemu-img's order, since which error a script sees
 * for a doubly wrong command line is part of the behaviour: the option loop
 * (each -o checked as a list), -o help, the file name, the size argument,
 * extra arguments; then the format, the protocol, the -o values, a size
 * given twice, backing options, a missing size; then the "Formatting" line,
 * and only then the file is made.
 */
final class CreateCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;

    /** The formats jblock can create, with their own creation options. */
    private static List<CreateOptions.Desc> formatOptions(String fmt) {
        return switch (fmt) {
            case "raw" -> CreateOptions.RAW;
            case "file" -> CreateOptions.FILE;
            case "qcow2" -> CreateOptions.QCOW2;
            default -> null;
        };
    }

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt = "raw";
        String baseFilename = null;
        String baseFmt = null;
        String options = null;
        boolean quiet = false;
        boolean unsafe = false;
        CommandLine cl = new CommandLine(ctx, args, "F:b:f:ho:qu", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("object", OPTION_OBJECT));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'F' -> baseFmt = cl.optarg();
                case 'b' -> baseFilename = cl.optarg();
                case 'f' -> fmt = cl.optarg();
                case 'o' -> options = accumulate(ctx, options, cl.optarg());
                case 'q' -> quiet = true;
                case 'u' -> unsafe = true;
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                default -> throw new IllegalStateException("option " + c);
            }
        }
        List<String> operands = cl.operands();
        String filename = operands.isEmpty() ? null : operands.getFirst();
        if (options != null && KeyValueParser.hasHelpOption(options)) {
            return printOptionHelp(ctx, filename, fmt);
        }
        if (filename == null) {
            throw ctx.usageError("Expecting image file name");
        }
        long size = -1;
        if (operands.size() > 1) {
            size = SizeArgument.parse(ctx, "image size", operands.get(1));
        }
        if (operands.size() > 2) {
            throw ctx.usageError("Unexpected argument: " + operands.get(2));
        }
        return create(ctx, filename, fmt, new Backing(baseFilename, baseFmt, unsafe), options, size, quiet);
    }

    private static String accumulate(ImgContext ctx, String options, String arg) throws ImgExit {
        if (!CreateOptions.isValidList(arg)) {
            throw ctx.fail("Invalid option list: " + arg);
        }
        return options == null ? arg : options + "," + arg;
    }

    /** {@code -o help}: the format's options, and the protocol's too when a file name says which protocol. */
    private static int printOptionHelp(ImgContext ctx, String filename, String fmt) throws ImgExit {
        List<CreateOptions.Desc> descs = checkFormat(ctx, fmt, null);
        if (filename != null) {
            String path = checkProtocol(ctx, filename, null);
            ctx.out().print("Supported options:\n" + CreateOptions.help(CreateOptions.append(descs,
                    protocolOptions(filename, path, fmt))));
        } else {
            ctx.out().print("Supported " + fmt + " options:\n" + CreateOptions.help(descs) + "\n"
                    + "The protocol level may support further options.\n"
                    + "Specify the target filename to include those options.\n");
        }
        return 0;
    }

    /** -b, -F and -u as given. */
    private record Backing(String file, String format, boolean unsafe) {
    }

    private int create(ImgContext ctx, String filename, String fmt, Backing backing, String optionText, long size,
                       boolean quiet) throws ImgExit {
        String prefix = filename + ": ";
        List<CreateOptions.Desc> descs = checkFormat(ctx, fmt, prefix);
        String path = checkProtocol(ctx, filename, prefix);
        List<CreateOptions.Desc> protocolDescs = protocolOptions(filename, path, fmt);
        CreateOptions opts = new CreateOptions(CreateOptions.append(descs, protocolDescs));
        if (optionText != null) {
            try {
                opts.parse(optionText, ctx::warn);
            } catch (CreateOptions.Invalid e) {
                throw ctx.fail(prefix + e.getMessage());
            }
        }
        if (!opts.has("size")) {
            opts.setNumber("size", size);
        } else if (size != -1) {
            throw ctx.fail(prefix + "The image size must be specified only once");
        }
        setBackingOptions(ctx, opts, prefix, fmt, backing);
        String backingFile = opts.has("backing_file") ? opts.text("backing_file") : null;
        if (backingFile != null) {
            if (backingFile.equals(filename)) {
                throw ctx.fail(prefix + "Error: Trying to create an image with the same filename as the backing file");
            }
            if (backingFile.isEmpty()) {
                throw ctx.fail(prefix + "Expected backing file name, got empty string");
            }
            String backingFmt = opts.has("backing_fmt") ? opts.text("backing_fmt") : null;
            if (!backing.unsafe()) {
                long backingSize = openBacking(ctx, prefix, filename, backingFile, backingFmt);
                if (opts.size("size", -1) == -1) {
                    opts.setNumber("size", backingSize);
                }
            } else if (backingFmt == null) {
                throw ctx.fail(prefix + "Backing file specified without backing format");
            }
        }
        if (opts.size("size", -1) == -1) {
            throw ctx.fail(prefix + "Image creation needs a size parameter");
        }
        if (!quiet) {
            ctx.out().print("Formatting '" + filename + "', fmt=" + fmt + " " + opts.formattingLine() + "\n");
            ctx.out().flush();
        }
        if (fmt.equals("qcow2")) {
            return createFormat(ctx, prefix, fmt, path, opts, descs);
        }
        CreateOptions fileOpts = opts;
        if (!fmt.equals("file")) {
            // QEMU hands the options down to the protocol as text and parses them again there.
            fileOpts = new CreateOptions(protocolDescs);
            try {
                for (String[] kv : opts.setOptions()) {
                    fileOpts.set(kv[0], kv[1], ctx::warn);
                }
            } catch (CreateOptions.Invalid e) {
                throw ctx.fail(prefix + e.getMessage());
            }
        }
        try {
            RawCreator.create(protocolDescs == CreateOptions.HOST_DEVICE ? "host_device" : "file", path, fileOpts);
        } catch (BlockException e) {
            throw ctx.fail(prefix + (e.errno() == Errno.EFBIG
                    ? "The image size is too large for file format '" + fmt + "'" : e.getMessage()));
        }
        return 0;
    }

    /** -b and -F become the backing_file and backing_fmt options, which only some formats have. */
    private static void setBackingOptions(ImgContext ctx, CreateOptions opts, String prefix, String fmt, Backing b)
            throws ImgExit {
        try {
            if (b.file() != null) {
                if (!opts.accepts("backing_file")) {
                    throw ctx.fail(prefix + "Backing file not supported for file format '" + fmt + "'");
                }
                opts.set("backing_file", b.file(), ctx::warn);
            }
            if (b.format() != null) {
                if (!opts.accepts("backing_fmt")) {
                    throw ctx.fail(prefix + "Backing file format not supported for file format '" + fmt + "'");
                }
                opts.set("backing_fmt", b.format(), ctx::warn);
            }
        } catch (CreateOptions.Invalid e) {
            throw ctx.fail(prefix + e.getMessage());
        }
    }

    /**
     * Opens the backing file as qemu-img does before it creates an overlay:
     * read-only, shared, named relative to the new image's folder, with the
     * given format (a missing one is an error in 7.2, after the open, with
     * the probed format as a hint). Returns its size.
     */
    private static long openBacking(ImgContext ctx, String prefix, String filename, String backingFile,
                                    String backingFmt) throws ImgExit {
        String full = backingPath(filename, backingFile);
        ImageOpener.Request r = new ImageOpener.Request(full, backingFmt, false, true, true);
        try (ImageOpener.Opened o = ImageOpener.openOrThrow(ctx, r, null)) {
            if (backingFmt == null) {
                ctx.err().print(ctx.prog() + ": " + prefix + "Backing file specified without backing format\n"
                        + "Detected format of " + o.drive().root().driverName() + ".");
                throw new ImgExit(1);
            }
            return o.drive().length();
        } catch (io.jblock.block.BlockException e) {
            ctx.err().print(ctx.prog() + ": " + prefix + e.getMessage() + "\nCould not open backing image.\n");
            throw new ImgExit(1);
        }
    }

    /** QEMU's bdrv_get_full_backing_filename_from_filename: relative names are relative to the image's folder. */
    static String backingPath(String filename, String backingFile) {
        if (backingFile.startsWith("/") || QemuFormats.protocolPrefix(backingFile) != null
                || backingFile.startsWith("json:")) {
            return backingFile;
        }
        int slash = filename.lastIndexOf('/');
        return slash < 0 ? backingFile : filename.substring(0, slash + 1) + backingFile;
    }

    /** Hands a format's options to its driver, which creates the file through its protocol. */
    private static int createFormat(ImgContext ctx, String prefix, String fmt, String path, CreateOptions opts,
                                    List<CreateOptions.Desc> formatDescs) throws ImgExit {
        try {
            DriverRegistry.standard().find(fmt).orElseThrow().create(path,
                    new ImageCreation(opts.size("size", 0), Prealloc.OFF, opts.valuesOf(formatDescs)));
        } catch (io.jblock.block.BlockException e) {
            if (e.errno() == Errno.EFBIG && e.getMessage().startsWith("Failed to grow the L1 table")) {
                // bdrv_img_create's words for EFBIG, with a hint where the format has clusters.
                throw ctx.fail(prefix + "The image size is too large for file format '" + fmt + "'"
                        + (opts.accepts("cluster_size") ? " (try using a larger cluster size)" : ""));
            }
            throw ctx.fail(prefix + e.getMessage());
        }
        return 0;
    }

    /** The format's creation options; fails as qemu-img does for unknown formats, and says which are not there yet. */
    private static List<CreateOptions.Desc> checkFormat(ImgContext ctx, String fmt, String prefix) throws ImgExit {
        String p = prefix == null ? "" : prefix;
        List<CreateOptions.Desc> descs = formatOptions(fmt);
        if (descs != null) {
            return descs;
        }
        if (QemuFormats.QEMU_DRIVERS.contains(fmt)) {
            throw ctx.fail(p + "creating " + fmt + " images is not available yet in this version of jblock");
        }
        throw ctx.fail(p + "Unknown file format '" + fmt + "'");
    }

    /**
     * The protocol's creation options: QEMU picks host_device for a character
     * or block device named without a prefix (unless the format is the file
     * protocol itself), and the file protocol otherwise.
     */
    private static List<CreateOptions.Desc> protocolOptions(String filename, String path, String fmt) {
        if (!fmt.equals("file") && QemuFormats.protocolPrefix(filename) == null && io.jblock.protocol.FileDriver.isHostDevice(path)) {
            return CreateOptions.HOST_DEVICE;
        }
        return CreateOptions.FILE;
    }

    /** The host path the image goes to; only the file protocol can create images in jblock so far. */
    private static String checkProtocol(ImgContext ctx, String filename, String prefix) throws ImgExit {
        String p = prefix == null ? "" : prefix;
        String protocol = QemuFormats.protocolPrefix(filename);
        if (protocol == null) {
            return filename;
        }
        if (protocol.equals("file")) {
            return filename.substring(5);
        }
        if (QemuFormats.QEMU_PROTOCOLS.contains(protocol)) {
            throw ctx.fail(p + "the '" + protocol + "' protocol is not available yet in this version of jblock");
        }
        throw ctx.fail(p + "Unknown protocol '" + protocol + "'");
    }
}
