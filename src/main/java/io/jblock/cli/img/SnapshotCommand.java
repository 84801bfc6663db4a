package io.jblock.cli.img;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.cli.QemuText;
import io.jblock.format.qcow2.Qcow2InternalSnapshots;
import io.jblock.format.qcow2.Qcow2Node;

import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Optional;

/**
 * {@code snapshot [--object objectdef] [--image-opts] [-U] [-q]
 * [-l | -a snapshot | -c snapshot | -d snapshot] filename}: lists, applies,
 * creates or deletes an internal snapshot, as qemu-img 7.2's img_snapshot.
 * Without an action it only opens the image. Like qemu-img, {@code -f} is
 * not an option here: the format is always probed (or given with
 * --image-opts).
 */
final class SnapshotCommand implements ImgCommand {
    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

    private enum Action { NONE, LIST, APPLY, CREATE, DELETE }

    @Override
    public int run(ImgContext ctx, String[] args) throws ImgExit {
        Action action = Action.NONE;
        String name = null;
        boolean imageOpts = false;
        boolean forceShare = false;
        CommandLine cl = new CommandLine(ctx, args, "la:c:d:hqU",
                CommandLine.flag("help", 'h'), CommandLine.withArgument("object", OPTION_OBJECT),
                CommandLine.flag("image-opts", OPTION_IMAGE_OPTS), CommandLine.flag("force-share", 'U'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    throw new ImgExit(0);
                }
                case 'l', 'a', 'c', 'd' -> {
                    if (action != Action.NONE) {
                        throw ctx.usageError("Cannot mix '-l', '-a', '-c', '-d'");
                    }
                    action = switch (c) {
                        case 'l' -> Action.LIST;
                        case 'a' -> Action.APPLY;
                        case 'c' -> Action.CREATE;
                        default -> Action.DELETE;
                    };
                    if (c != 'l') {
                        name = cl.optarg();
                    }
                }
                case 'q' -> { } // qemu-img's snapshot prints nothing that -q would hide
                case 'U' -> forceShare = true;
                case OPTION_OBJECT -> throw ObjectOption.refuse(ctx, cl.optarg());
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> throw new IllegalStateException("option " + c);
            }
        }
        if (cl.operands().size() != 1) {
            throw ctx.usageError("Expecting one image file name");
        }
        String filename = cl.operands().getFirst();
        boolean readOnly = action == Action.LIST;
        List<Runnable> warnAgain = new java.util.ArrayList<>();
        try (ImageOpener.Opened image = ImageOpener.open(ctx,
                new ImageOpener.Request(filename, null, imageOpts, readOnly, forceShare), config -> {
                    var warnings = config.warnings;
                    config.warnings = w -> {
                        warnAgain.add(() -> warnings.accept(w));
                        warnings.accept(w);
                    };
                })) {
            BlockNode root = image.drive().root();
            Qcow2InternalSnapshots snapshots = root instanceof Qcow2Node q ? q.internalSnapshots() : null;
            switch (action) {
                case NONE -> { }
                case LIST -> {
                    if (snapshots != null) {
                        ctx.out().print(list(snapshots.list()));
                    }
                }
                case CREATE -> create(ctx, snapshots, name);
                case APPLY -> {
                    if (snapshots == null) {
                        // QEMU's fallback to the file child reopens it, probing (and warning) once more.
                        warnAgain.forEach(Runnable::run);
                    }
                    apply(ctx, snapshots, name);
                }
                case DELETE -> delete(ctx, snapshots, name);
            }
            return 0;
        } catch (BlockException e) {
            throw ctx.fail(e.getMessage());
        }
    }

    private static void create(ImgContext ctx, Qcow2InternalSnapshots snapshots, String name) throws ImgExit {
        if (snapshots == null) {
            throw ctx.fail("Could not create snapshot '" + name + "': -95 (Operation not supported)");
        }
        Instant now = Instant.now();
        try {
            // g_get_real_time: microseconds.
            snapshots.create(name, now.getEpochSecond(), (now.getNano() / 1000) * 1000);
        } catch (BlockException e) {
            throw ctx.fail("Could not create snapshot '" + name + "': -" + e.errno().number() + " ("
                    + e.errno().text() + ")");
        }
    }

    private static void apply(ImgContext ctx, Qcow2InternalSnapshots snapshots, String name) throws ImgExit {
        if (snapshots == null) {
            throw ctx.fail("Could not apply snapshot '" + name + "': Block driver does not support snapshots");
        }
        try {
            snapshots.apply(name);
        } catch (BlockException e) {
            throw ctx.fail("Could not apply snapshot '" + name + "': Failed to load snapshot: " + e.errno().text());
        }
    }

    private static void delete(ImgContext ctx, Qcow2InternalSnapshots snapshots, String name) throws ImgExit {
        Optional<Qcow2InternalSnapshots.Info> found = snapshots == null ? Optional.empty() : snapshots.findByName(name);
        if (found.isEmpty()) {
            throw ctx.fail("Could not delete snapshot '" + name + "': snapshot not found");
        }
        try {
            snapshots.delete(found.get().id(), found.get().name());
        } catch (BlockException e) {
            throw ctx.fail("Could not delete snapshot '" + name + "': " + e.getMessage());
        }
    }

    /** qemu-img's dump_snapshots: nothing at all when there are none. */
    static String list(List<Qcow2InternalSnapshots.Info> all) {
        if (all.isEmpty()) {
            return "";
        }
        StringBuilder sb = new StringBuilder("Snapshot list:\n");
        sb.append(String.format("%-10s%-17s%8s%20s%13s%11s", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT"))
                .append('\n');
        for (Qcow2InternalSnapshots.Info s : all) {
            sb.append(row(s)).append('\n');
        }
        return sb.toString();
    }

    /** One line of QEMU's bdrv_snapshot_dump. */
    static String row(Qcow2InternalSnapshots.Info s) {
        String date = DATE.format(Instant.ofEpochSecond(s.dateSeconds()).atZone(ZoneId.systemDefault()));
        long secs = Long.divideUnsigned(s.vmClockNanos(), 1_000_000_000L);
        String clock = String.format("%02d:%02d:%02d.%03d", (int) (secs / 3600), (int) ((secs / 60) % 60),
                (int) (secs % 60), (int) (Long.divideUnsigned(s.vmClockNanos(), 1_000_000L) % 1000));
        String icount = s.icount() != -1 ? Long.toString(s.icount()) : "";
        return String.format("%-9s %-16s %8s%20s%13s%11s", s.id(), s.name(), QemuText.sizeToStr(s.vmStateSize()),
                date, clock, icount);
    }
}
