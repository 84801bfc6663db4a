package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.ImageCreation;
import io.jblock.block.Prealloc;
import io.jblock.options.DriverRegistry;
import io.jblock.protocol.FileDriver;

import java.util.List;

/**
 * The target {@code img convert} creates: its format's and protocol's
 * creation options ({@code -o}, with the size set to the sources' total),
 * qemu-img's checks on them, and the creation itself. Creation goes through
 * {@link #createImage}, the one place that knows which formats jblock can
 * create.
 */
final class ConvertTarget {
    /**
     * What will be created.
     *
     * @param protocol "file" or "host_device"
     * @param path     the host path, without a "file:" prefix
     */
    record Plan(String format, String filename, String protocol, String path, CreateOptions options,
                List<CreateOptions.Desc> protocolDescs, String backingFile, String backingFormat) {
        boolean preallocated() {
            String p = options.text("preallocation");
            return p != null && !p.equals("off");
        }
    }

    private ConvertTarget() {
    }

    /** The formats jblock can create, with their creation options; null for the others. */
    private static List<CreateOptions.Desc> formatOptions(String fmt) {
        return switch (fmt) {
            case "raw" -> CreateOptions.RAW;
            case "file" -> CreateOptions.FILE;
            case "qcow2" -> CreateOptions.QCOW2;
            default -> null;
        };
    }

    /**
     * Creates the image the plan describes (QEMU's bdrv_create): raw through
     * its protocol with {@code protocolOptions}; other formats through their
     * driver, which creates the file itself ({@code protocolOptions} unused).
     */
    private static void createImage(Plan plan, CreateOptions protocolOptions) throws BlockException {
        if (plan.format().equals("raw") || plan.format().equals("file")) {
            RawCreator.create(plan.protocol(), plan.path(), protocolOptions);
            return;
        }
        // A format driver creates its file through its protocol itself (qcow2: Qcow2Creator).
        CreateOptions opts = plan.options();
        DriverRegistry.standard().find(plan.format()).orElseThrow().create(plan.path(),
                new ImageCreation(opts.size("size", 0), Prealloc.OFF, opts.valuesOf(formatOptions(plan.format()))));
    }

    /** Whether the format takes compressed writes (-c). */
    static boolean canCompress(String fmt) {
        return "qcow2".equals(fmt);
    }

    /** qemu-img's checks before creation, in its order: format, protocol, -o, size, backing options. */
    static Plan plan(ImgContext ctx, String fmt, String filename, String optionText, long size,
                     String backingFile, String backingFormat) throws ImgExit {
        List<CreateOptions.Desc> descs = checkFormat(ctx, fmt);
        String path = checkProtocol(ctx, filename);
        boolean device = !fmt.equals("file") && QemuFormats.protocolPrefix(filename) == null
                && FileDriver.isHostDevice(path);
        List<CreateOptions.Desc> protocolDescs = device ? CreateOptions.HOST_DEVICE : CreateOptions.FILE;
        CreateOptions opts = new CreateOptions(CreateOptions.append(descs, protocolDescs));
        if (optionText != null) {
            try {
                opts.parse(optionText, ctx::warn);
            } catch (CreateOptions.Invalid e) {
                throw ctx.fail(e.getMessage());
            }
        }
        opts.setNumber("size", size);
        if (backingFile != null && !opts.has("backing_file") && !hasOption(descs, "backing_file")) {
            throw ctx.fail("Backing file not supported for file format '" + fmt + "'");
        }
        if (backingFormat != null && !hasOption(descs, "backing_fmt")) {
            throw ctx.fail("Backing file format not supported for file format '" + fmt + "'");
        }
        try {
            // add_old_style_options: -B and -F become the format's options.
            if (backingFile != null && hasOption(descs, "backing_file")) {
                opts.set("backing_file", backingFile, ctx::warn);
            }
            if (backingFormat != null && hasOption(descs, "backing_fmt")) {
                opts.set("backing_fmt", backingFormat, ctx::warn);
            }
        } catch (CreateOptions.Invalid e) {
            throw ctx.fail(e.getMessage());
        }
        String backing = hasOption(descs, "backing_file") ? opts.text("backing_file") : null;
        String backingFmt = hasOption(descs, "backing_fmt") ? opts.text("backing_fmt") : null;
        return new Plan(fmt, filename, device ? "host_device" : "file", path, opts, protocolDescs,
                backing != null ? backing : backingFile, backingFmt != null ? backingFmt : backingFormat);
    }

    /** Makes the image; a failure reads "NAME: error while converting FMT: why". */
    static void create(ImgContext ctx, Plan plan) throws ImgExit {
        create(ctx, plan, plan.filename() + ": error while converting " + plan.format() + ": ");
    }

    /** Makes the image; a failure is {@code prefix} and why. */
    static void create(ImgContext ctx, Plan plan, String prefix) throws ImgExit {
        if (!plan.format().equals("raw") && !plan.format().equals("file")) {
            try {
                createImage(plan, null);
            } catch (BlockException e) {
                if (e.errno() == Errno.EFBIG && e.getMessage().startsWith("Failed to grow the L1 table")) {
                    throw ctx.fail(prefix + "The image size is too large for file format '" + plan.format()
                            + "' (try using a larger cluster size)");
                }
                throw ctx.fail(prefix + e.getMessage());
            }
            return;
        }
        CreateOptions fileOpts = plan.options();
        if (!plan.format().equals("file")) {
            // QEMU hands the options down to the protocol as text and parses them again there.
            fileOpts = new CreateOptions(plan.protocolDescs());
            try {
                for (String[] kv : plan.options().setOptions()) {
                    fileOpts.set(kv[0], kv[1], ctx::warn);
                }
            } catch (CreateOptions.Invalid e) {
                throw ctx.fail(prefix + e.getMessage());
            }
        }
        try {
            createImage(plan, fileOpts);
        } catch (BlockException e) {
            throw ctx.fail(prefix + (e.errno() == Errno.EFBIG
                    ? "The image size is too large for file format '" + plan.format() + "'" : e.getMessage()));
        }
    }

    /** {@code -o help} for the target: the format's options and, with a file name, its protocol's. */
    static int printOptionHelp(ImgContext ctx, String filename, String fmt) throws ImgExit {
        List<CreateOptions.Desc> descs = checkFormat(ctx, fmt);
        if (filename != null) {
            checkProtocol(ctx, filename);
            ctx.out().print("Supported options:\n" + CreateOptions.help(CreateOptions.append(descs,
                    CreateOptions.FILE)));
        } else {
            ctx.out().print("Supported " + fmt + " options:\n" + CreateOptions.help(descs) + "\n"
                    + "The protocol level may support further options.\n"
                    + "Specify the target filename to include those options.\n");
        }
        return 0;
    }

    private static boolean hasOption(List<CreateOptions.Desc> descs, String name) {
        return descs.stream().anyMatch(d -> d.name().equals(name));
    }

    private static List<CreateOptions.Desc> checkFormat(ImgContext ctx, String fmt) throws ImgExit {
        List<CreateOptions.Desc> descs = formatOptions(fmt);
        if (descs != null) {
            return descs;
        }
        if (QemuFormats.QEMU_DRIVERS.contains(fmt) || DriverRegistry.standard().find(fmt).isPresent()) {
            throw ctx.fail("creating " + fmt + " images is not available yet in this version of jblock");
        }
        throw ctx.fail("Unknown file format '" + fmt + "'");
    }

    private static String checkProtocol(ImgContext ctx, String filename) throws ImgExit {
        String protocol = QemuFormats.protocolPrefix(filename);
        if (protocol == null) {
            return filename;
        }
        if (protocol.equals("file")) {
            return filename.substring(5);
        }
        if (QemuFormats.QEMU_PROTOCOLS.contains(protocol)) {
            throw ctx.fail("the '" + protocol + "' protocol is not available yet in this version of jblock");
        }
        throw ctx.fail("Unknown protocol '" + protocol + "'");
    }
}
