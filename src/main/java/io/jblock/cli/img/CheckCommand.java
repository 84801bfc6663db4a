package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.DiscardMode;
import io.jblock.format.qcow2.Qcow2Check;
import io.jblock.format.qcow2.Qcow2CheckResult;
import io.jblock.options.CacheModes;
import io.jblock.protocol.FileNode;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt]
 * [-r [leaks | all]] [-T src_cache] [-U] filename}, as qemu-img 7.2.
 *
 * <p>Exit status: 0 no errors, 1 the check could not complete (internal
 * errors, or it failed), 2 corruptions, 3 leaks only, 63 the format has no
 * check (raw). The check's findings go to stderr line by line as they are
 * made; the summary (or JSON) to stdout, unless {@code -q}.
 *
 * <p>The image is first opened read-only the way every command opens it, so
 * that a name or image qemu-img cannot open fails with the same message.
 * The qcow2 check then runs on the image's file: for a repair, the host file
 * is opened again read-write, and the check parses the qcow2 structures
 * itself (the qcow2 driver opens images read-only so far). After a repair
 * the image is checked again, and that second check is what is reported.
 */
final class CheckCommand implements ImgCommand {
    private static final int OPTION_OUTPUT = 256;
    private static final int OPTION_OBJECT = 257;
    private static final int OPTION_IMAGE_OPTS = 258;
    /** qemu-img's exit status when the format has no check. */
    static final int NOT_SUPPORTED = 63;

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        String fmt = null;
        String output = null;
        String cache = "writeback";
        boolean imageOpts = false;
        boolean forceShare = false;
        boolean quiet = false;
        Qcow2Check.Repair repair = Qcow2Check.Repair.NONE;
        CommandLine cl = new CommandLine(ctx, args, "hf:r:T:qU", CommandLine.flag("help", 'h'),
                CommandLine.withArgument("format", 'f'), CommandLine.withArgument("repair", 'r'),
                CommandLine.withArgument("output", OPTION_OUTPUT), CommandLine.withArgument("object", OPTION_OBJECT),
                CommandLine.flag("image-opts", OPTION_IMAGE_OPTS), CommandLine.flag("force-share", 'U'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'f' -> fmt = cl.optarg();
                case 'r' -> repair = switch (cl.optarg()) {
                    case "leaks" -> Qcow2Check.Repair.LEAKS;
                    case "all" -> Qcow2Check.Repair.ALL;
                    default -> throw ctx.usageError("Unknown option value for -r (expecting 'leaks' or 'all'): "
                            + cl.optarg());
                };
                case 'T' -> cache = cl.optarg();
                case 'q' -> quiet = true;
                case 'U' -> forceShare = true;
                case OPTION_OUTPUT -> output = cl.optarg();
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (cl.operands().size() != 1) {
            throw ctx.usageError("Expecting one image file name");
        }
        String filename = cl.operands().getFirst();
        boolean json;
        if ("json".equals(output)) {
            json = true;
        } else if (output == null || output.equals("human")) {
            json = false;
        } else {
            throw ctx.fail("--output must be used with human or json as argument.");
        }
        // Validated as qemu-img does; jblock's check reads and writes through the file directly either way.
        if (CacheModes.parseQemu(cache).isEmpty()) {
            throw ctx.fail("Invalid source cache option: " + cache);
        }
        ImageOpener.Request request = new ImageOpener.Request(filename, fmt, imageOpts, true, forceShare);
        String format;
        java.nio.file.Path hostFile;
        Qcow2CheckResult result;
        // As qemu-img opens for a check (BDRV_O_CHECK): a damaged snapshot table is the check's to report.
        try (ImageOpener.Opened image = ImageOpener.open(ctx, request, config -> config.check = true)) {
            BlockNode root = image.drive().root();
            format = root.info().formatName();
            if (!root.driverName().equals("qcow2")) {
                if (repair != Qcow2Check.Repair.NONE) {
                    image.close();
                    reopenForWriting(ctx, new ImageOpener.Request(filename, fmt, imageOpts, false, forceShare));
                }
                ctx.error("This image format does not support checks");
                return NOT_SUPPORTED;
            }
            BlockNode file = root.child("file");
            hostFile = file instanceof FileNode f ? f.path() : null;
            if (repair == Qcow2Check.Repair.NONE) {
                result = check(ctx, file, repair);
                return report(ctx, filename, format, result, null, json, quiet);
            }
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
        if (hostFile == null) {
            throw ctx.fail("jblock can repair only an image in a host file");
        }
        ImageOpener.Request rw = new ImageOpener.Request("file:" + hostFile, "file", false, false, forceShare);
        // Discards pass to the file, as below a format in QEMU: what the repair frees is given back.
        try (ImageOpener.Opened image = ImageOpener.open(ctx, rw, config -> config.discard = DiscardMode.UNMAP)) {
            BlockNode file = image.drive().root();
            result = check(ctx, file, repair);
            if (result.failure() == null && (result.corruptionsFixed() != 0 || result.leaksFixed() != 0)) {
                if (!json && !quiet) {
                    ctx.out().print("The following inconsistencies were found and repaired:\n\n    "
                            + result.leaksFixed() + " leaked clusters\n    " + result.corruptionsFixed()
                            + " corruptions\n\nDouble checking the fixed image now...\n");
                }
                Qcow2CheckResult second = check(ctx, file, Qcow2Check.Repair.NONE);
                file.flush();
                return report(ctx, filename, format, second, result, json, quiet);
            }
            file.flush();
            return report(ctx, filename, format, result, null, json, quiet);
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    /**
     * qemu-img opens the image read-write for a repair even when the format
     * has no check, and so says what a writable probed raw image draws: the
     * "WARNING: Image format was not specified" text, which QEMU prints
     * bare, without the "prog: warning: " of other warnings.
     */
    private static void reopenForWriting(ImgContext ctx, ImageOpener.Request request) throws ImgExit,
            BlockException {
        java.io.ByteArrayOutputStream buffer = new java.io.ByteArrayOutputStream();
        java.io.PrintStream captured = new java.io.PrintStream(buffer, true, java.nio.charset.StandardCharsets.UTF_8);
        ImgContext quietCtx = new ImgContext(ctx.prog(), ctx.in(), ctx.out(), captured);
        try {
            ImageOpener.open(quietCtx, request).close();
        } finally {
            ctx.err().print(buffer.toString(java.nio.charset.StandardCharsets.UTF_8)
                    .replace(ctx.prog() + ": warning: WARNING: ", "WARNING: "));
        }
    }

    /** One check, its findings printed to stderr as QEMU prints them (unprefixed). */
    private static Qcow2CheckResult check(ImgContext ctx, BlockNode file, Qcow2Check.Repair repair)
            throws BlockException {
        Qcow2CheckResult r = Qcow2Check.run(file, repair, line -> ctx.err().print(
                (line.startsWith(Qcow2Check.ERROR_REPORT) ? ctx.prog() + ": " + line.substring(1) : line) + "\n"));
        ctx.err().flush();
        return r;
    }

    /**
     * The summary and the exit status. {@code fixed}, when a repair was
     * followed by a second check, gives the repaired counts to report.
     */
    private static int report(ImgContext ctx, String filename, String format, Qcow2CheckResult r,
                              Qcow2CheckResult fixed, boolean json, boolean quiet) {
        if (r.failure() != null) {
            ctx.error("Check failed: " + r.failure().text());
            return 1;
        }
        long leaksFixed = fixed != null ? fixed.leaksFixed() : r.leaksFixed();
        long corruptionsFixed = fixed != null ? fixed.corruptionsFixed() : r.corruptionsFixed();
        if (!quiet) {
            ctx.out().print(json ? QemuJson.pretty(toJson(filename, format, r, leaksFixed, corruptionsFixed)) + "\n"
                    : human(r));
        }
        if (r.checkErrors() != 0) {
            ctx.error("Check failed");
            return 1;
        }
        return r.corruptions() != 0 ? 2 : r.leaks() != 0 ? 3 : 0;
    }

    /** qemu-img's dump_human_image_check. */
    static String human(Qcow2CheckResult r) {
        StringBuilder sb = new StringBuilder();
        if (r.corruptions() == 0 && r.leaks() == 0 && r.checkErrors() == 0) {
            sb.append("No errors were found on the image.\n");
        } else {
            if (r.corruptions() != 0) {
                sb.append("\n").append(r.corruptions()).append(" errors were found on the image.\n")
                        .append("Data may be corrupted, or further writes to the image may corrupt it.\n");
            }
            if (r.leaks() != 0) {
                sb.append("\n").append(r.leaks()).append(" leaked clusters were found on the image.\n")
                        .append("This means waste of disk space, but no harm to data.\n");
            }
            if (r.checkErrors() != 0) {
                sb.append("\n").append(r.checkErrors()).append(" internal errors have occurred during the check.\n");
            }
        }
        if (r.totalClusters() != 0 && r.allocatedClusters() != 0) {
            sb.append(r.allocatedClusters()).append('/').append(r.totalClusters()).append(" = ")
                    .append(percent(r.allocatedClusters(), r.totalClusters())).append("% allocated, ")
                    .append(percent(r.fragmentedClusters(), r.allocatedClusters())).append("% fragmented, ")
                    .append(percent(r.compressedClusters(), r.allocatedClusters())).append("% compressed clusters\n");
        }
        if (r.imageEndOffset() != 0) {
            sb.append("Image end offset: ").append(r.imageEndOffset()).append('\n');
        }
        return sb.toString();
    }

    /** C's {@code %0.2f} of {@code part * 100.0 / whole}: round half to even on the exact double. */
    private static String percent(long part, long whole) {
        return new java.math.BigDecimal(part * 100.0 / whole).setScale(2, java.math.RoundingMode.HALF_EVEN)
                .toPlainString();
    }

    /** The ImageCheck QAPI object: members in schema order, the optional ones only when non-zero. */
    private static Map<String, Object> toJson(String filename, String format, Qcow2CheckResult r, long leaksFixed,
                                              long corruptionsFixed) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", filename);
        m.put("format", format);
        m.put("check-errors", r.checkErrors());
        optional(m, "image-end-offset", r.imageEndOffset());
        optional(m, "corruptions", r.corruptions());
        optional(m, "leaks", r.leaks());
        optional(m, "corruptions-fixed", corruptionsFixed);
        optional(m, "leaks-fixed", leaksFixed);
        optional(m, "total-clusters", r.totalClusters());
        optional(m, "allocated-clusters", r.allocatedClusters());
        optional(m, "fragmented-clusters", r.fragmentedClusters());
        optional(m, "compressed-clusters", r.compressedClusters());
        return m;
    }

    private static void optional(Map<String, Object> m, String key, long value) {
        if (value != 0) {
            m.put(key, value);
        }
    }
}
