package io.jblock.cli.io;

import io.jblock.block.Errno;
import io.jblock.filter.blkdebug.BlkdebugNode;
import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.Choice;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.NodeOptions;
import io.jblock.options.CacheModes;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** open, close, reopen, help, quit, sleep, and the debugging commands (abort, sigraise, breakpoints). */
final class SessionCommands {
    /** Signals whose default action leaves the process running (or that qemu-io ignores, as SIGPIPE). */
    private static final Set<Long> HARMLESS_SIGNALS = Set.of(0L, 13L, 17L, 18L, 19L, 20L, 21L, 22L, 23L, 28L);
    /** Linux's NSIG: qemu-io refuses signal numbers above it. */
    private static final long NSIG = 65;

    private SessionCommands() {
    }

    /**
     * qemu-io's openfile: refuses when an image is open, and reports a failed
     * open as "can't open device NAME: why" (without the name for option strings).
     */
    static boolean openFile(IoSession s, ImageOpener.Request r) {
        if (s.drive != null) {
            s.error("file open already, try 'help close'");
            return false;
        }
        try {
            s.drive = ImageOpener.open(r, w -> s.err.print(w + "\n"));
            s.request = r;
            s.writePermission = !s.drive.isReadOnly();
            return true;
        } catch (ImageOpener.RequestException e) {
            s.error(e.getMessage());
        } catch (BlockException e) {
            s.error("can't open" + (r.filename != null ? " device " + r.filename : "") + ": " + e.getMessage());
        }
        return false;
    }

    static int open(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("open");
        ImageOpener.Request r = new ImageOpener.Request();
        LinkedHashMap<String, String> opts = new LinkedHashMap<>();
        Args a = new Args(s, argv, "snCro:kt:d:i:U");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 's' -> r.snapshot = true;
                case 'n' -> r.cache = CacheMode.NONE.options();
                case 'C' -> r.copyOnRead = true;
                case 'r' -> r.readOnly = true;
                case 'k' -> r.aio = AioMode.NATIVE;
                case 't' -> {
                    CacheOptions cache = CacheModes.parse(a.optarg()).orElse(null);
                    if (cache == null) {
                        s.error("Invalid cache option: " + a.optarg());
                        return -1;
                    }
                    r.cache = cache;
                }
                case 'd' -> {
                    DiscardMode d = Choice.parse(DiscardMode.class, a.optarg()).orElse(null);
                    if (d == null) {
                        s.error("Invalid discard option: " + a.optarg());
                        return -1;
                    }
                    r.discard = d;
                }
                case 'i' -> {
                    AioMode m = Choice.parse(AioMode.class, a.optarg()).orElse(null);
                    if (m == null) {
                        s.error("Invalid aio option: " + a.optarg());
                        return -1;
                    }
                    r.aio = m;
                }
                case 'o' -> {
                    if (s.imageOpts) {
                        s.out.print("--image-opts and 'open -o' are mutually exclusive\n");
                        return -1;
                    }
                    if (!QemuOptsText.parseMerged(s, a.optarg(), opts)) {
                        return -1;
                    }
                }
                case 'U' -> r.forceShare = true;
                default -> {
                    return self.usage(s);
                }
            }
        }
        List<String> ops = a.operands();
        if (ops.size() > 1) {
            return self.usage(s);
        }
        if (s.imageOpts && !ops.isEmpty()) {
            QemuOptsText.parse(ops.get(0), opts, s::warn);
        } else {
            r.filename = ops.isEmpty() ? null : ops.get(0);
        }
        r.options = opts;
        return openFile(s, r) ? 0 : -1;
    }

    static int close(IoSession s, String[] argv) {
        s.closeImage();
        return 0;
    }

    /**
     * Opens the image again with some settings changed. jblock's drives keep
     * their settings for life, so this opens a new drive and closes the old
     * one; if the new open fails the old drive stays.
     */
    static int reopen(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("reopen");
        ImageOpener.Request r = s.request.copy();
        Boolean readOnly = null;
        boolean readOnlyByFlag = false;
        CacheOptions cache = null;
        LinkedHashMap<String, String> opts = new LinkedHashMap<>();
        Args a = new Args(s, argv, "c:o:rw");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'c' -> {
                    cache = CacheModes.parse(a.optarg()).orElse(null);
                    if (cache == null) {
                        s.error("Invalid cache option: " + a.optarg());
                        return -1;
                    }
                }
                case 'o' -> {
                    if (!QemuOptsText.parseMerged(s, a.optarg(), opts)) {
                        return -1;
                    }
                }
                case 'r', 'w' -> {
                    if (readOnly != null) {
                        s.error("Only one -r/-w option may be given");
                        return -1;
                    }
                    readOnly = c == 'r';
                }
                default -> {
                    return self.usage(s);
                }
            }
        }
        if (!a.operands().isEmpty()) {
            return self.usage(s);
        }
        try {
            if (opts.containsKey("read-only")) {
                if (readOnly != null) {
                    s.error("Cannot set both -r/-w and 'read-only'");
                    return -1;
                }
                readOnly = NodeOptions.parseBool("read-only", opts.remove("read-only"));
            }
            else if (readOnly != null) {
                readOnlyByFlag = readOnly;
            }
            if (readOnly != null) {
                r.readOnly = readOnly;
                r.options.remove("read-only");
            }
            boolean direct = opts.containsKey("cache.direct");
            boolean noFlush = opts.containsKey("cache.no-flush");
            if (direct || noFlush) {
                if (cache != null) {
                    s.error("Cannot set both -c and the cache options");
                    return -1;
                }
                r.cache = r.cache.override(null,
                        direct ? NodeOptions.parseBool("cache.direct", opts.remove("cache.direct")) : null,
                        noFlush ? NodeOptions.parseBool("cache.no-flush", opts.remove("cache.no-flush")) : null);
                r.options.remove("cache.direct");
                r.options.remove("cache.no-flush");
            } else if (cache != null) {
                r.cache = cache;
                r.options.remove("cache.direct");
                r.options.remove("cache.no-flush");
            }
            for (Map.Entry<String, String> e : opts.entrySet()) {
                String key = e.getKey();
                if (key.equals("discard")) {
                    DiscardMode d = Choice.parse(DiscardMode.class, e.getValue()).orElse(null);
                    if (d == null) {
                        s.error("Invalid discard option");
                        return -1;
                    }
                    r.discard = d;
                    r.options.remove("discard");
                } else if (!(key.equals("driver") && e.getValue().equals(s.drive.root().driverName()))) {
                    s.error("Cannot change the option '" + key + "'");
                    return -1;
                }
            }
        } catch (BlockException e) {
            s.error(e.getMessage());
            return -1;
        }
        if (readOnlyByFlag) {
            // reopen -r gives up write permission before reopening.
            s.writePermission = false;
        }
        if (r.readOnly && s.writePermission) {
            s.error("Read-only block node '" + s.drive.root().nodeName() + "' cannot support read-write users");
            return -1;
        }
        Drive old = s.drive;
        s.drainAio();
        if (r.snapshot && !old.root().isReadOnly()) {
            // The snapshot layer holds everything written so far: keep it, change only the drive's settings.
            s.drive = new Drive("", old.root(), r.cache.writeback(), r.readOnly, DetectZeroes.OFF);
            s.request = r;
            return 0;
        }
        // The old drive's image locks would stand in the new one's way (they belong to another open of the
        // file), so it is closed first, as QEMU moves its locks on one descriptor; if the new open fails,
        // the image opens again as it was.
        try {
            old.close();
        } catch (BlockException e) {
            s.error(e.getMessage());
        }
        try {
            s.drive = ImageOpener.open(r, w -> { });
        } catch (ImageOpener.RequestException | BlockException e) {
            s.error(e.getMessage());
            try {
                s.drive = ImageOpener.open(s.request, w -> { });
            } catch (ImageOpener.RequestException | BlockException again) {
                s.error(again.getMessage());
                s.drive = null;
            }
            return -1;
        }
        s.request = r;
        return 0;
    }

    static int help(IoSession s, String[] argv) {
        if (argv.length == 1) {
            for (IoCommand c : s.commands.values()) {
                oneLine(s, c.name(), c);
            }
            s.out.print("\nUse 'help commandname' for extended help.\n");
            return 0;
        }
        IoCommand c = s.find(argv[1]);
        if (c == null) {
            s.out.print("command " + argv[1] + " not found\n");
            return -1;
        }
        oneLine(s, argv[1], c);
        if (c.help() != null) {
            s.out.print(c.help());
        }
        return 0;
    }

    private static void oneLine(IoSession s, String name, IoCommand c) {
        s.out.print(name + " " + (c.args() != null ? c.args() + " " : "") + "-- " + c.oneline() + "\n");
    }

    static int quit(IoSession s, String[] argv) {
        s.quit = true;
        return 0;
    }

    static int sleep(IoSession s, String[] argv) {
        Long ms = QemuNumbers.strtol0(argv[1]);
        if (ms == null || ms < 0) {
            s.out.print(argv[1] + " is not a valid number\n");
            return -1;
        }
        s.drainAio();
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }

    /** Ends the run as abort(3) would: the shell sees 128 + SIGABRT. */
    static int abort(IoSession s, String[] argv) {
        s.killedWith = 128 + 6;
        s.quit = true;
        return 0;
    }

    static int sigraise(IoSession s, String[] argv) {
        Long sig = Args.size(s, argv[1]);
        if (sig == null) {
            return -1;
        }
        if (sig > NSIG) {
            s.out.print("signal argument '" + argv[1] + "' is too large to be a valid signal\n");
            return -1;
        }
        if (!HARMLESS_SIGNALS.contains(sig)) {
            // The default action of the signal ends the process; the shell sees 128 + its number.
            s.killedWith = 128 + sig.intValue();
            s.quit = true;
        }
        return 0;
    }

    /**
     * {@code break EVENT TAG}: on the image's blkdebug node (QEMU looks down
     * the primary children); ENOTSUP without one, as QEMU says.
     */
    static int breakpoint(IoSession s, String[] argv) {
        BlkdebugNode debug = s.blkdebug();
        if (debug == null) {
            s.out.print("Could not set breakpoint: " + Errno.ENOTSUP.text() + "\n");
            return -1;
        }
        debug.messages(s.out::print);
        try {
            debug.breakpoint(argv[1], argv[2]);
        } catch (BlockException e) {
            s.out.print("Could not set breakpoint: " + e.errno().text() + "\n");
            return -1;
        }
        return 0;
    }

    static int removeBreak(IoSession s, String[] argv) {
        BlkdebugNode debug = s.blkdebug();
        if (debug == null) {
            s.out.print("Could not remove breakpoint " + argv[1] + ": " + Errno.ENOTSUP.text() + "\n");
            return -1;
        }
        try {
            debug.removeBreakpoint(argv[1]);
            return 0;
        } catch (BlockException e) {
            s.out.print("Could not remove breakpoint " + argv[1] + ": " + e.errno().text() + "\n");
            return -1;
        } finally {
            s.settleAio(); // resumed requests run on until they finish or stop again
        }
    }

    static int resume(IoSession s, String[] argv) {
        BlkdebugNode debug = s.blkdebug();
        if (debug == null) {
            s.out.print("Could not resume request: " + Errno.ENOTSUP.text() + "\n");
            return -1;
        }
        try {
            debug.resume(argv[1]);
        } catch (BlockException e) {
            s.out.print("Could not resume request: " + e.errno().text() + "\n");
            return -1;
        }
        s.settleAio();
        return 0;
    }

    /**
     * Deliberate difference: qemu-io 7.2 waits forever for a request that can
     * never stop at the breakpoint (no blkdebug, or no request on its way
     * there); jblock fails at once instead. Since every aio request has
     * settled (finished or stopped) before a command runs, a tag not stopped
     * now can never be.
     */
    static int waitBreak(IoSession s, String[] argv) {
        BlkdebugNode debug = s.blkdebug();
        if (debug == null) {
            s.out.print("Could not wait for breakpoint " + argv[1] + ": " + Errno.ENOTSUP.text() + "\n");
            return -1;
        }
        s.settleAio();
        if (!debug.isSuspended(argv[1])) {
            s.out.print("Could not wait for breakpoint " + argv[1]
                    + ": no request is stopped there and none is running (qemu-io would wait forever)\n");
            return -1;
        }
        return 0;
    }
}
