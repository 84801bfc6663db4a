package io.jblock.cli.io;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.filter.blkdebug.BlkdebugNode;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One run of qemu-io: the open image (if any), the streams, the aio
 * requests whose completion is not reported yet, and whether any command
 * failed (which makes the exit status 1).
 */
final class IoSession {
    final String prog;
    final PrintStream out;
    final PrintStream err;
    final Map<String, IoCommand> commands;

    /** The open image, or null. */
    Drive drive;
    /** How {@link #drive} was opened, for reopen. */
    ImageOpener.Request request;
    /**
     * Whether qemu-io holds write permission on the image: taken when it is
     * opened writable or when a writing command runs, dropped only by
     * {@code reopen -r}. While it is held, a reopen that makes the image
     * read-only through {@code -o read-only=on} fails.
     */
    boolean writePermission;
    /** {@code --image-opts}: file names given to {@code open} are option strings too. */
    boolean imageOpts;
    /** Set by quit. */
    boolean quit;
    /** Set by abort and fatal signals: the exit status the process dies with. */
    Integer killedWith;

    /** Reports of finished aio requests; requests stopped at a blkdebug breakpoint finish on their own thread. */
    private final List<AioCompletion> pending = java.util.Collections.synchronizedList(new ArrayList<>());
    private final AioRequests aio = new AioRequests();

    /** A finished aio request whose report qemu-io prints only when its main loop next runs. */
    record AioCompletion(boolean failedAtSubmit, Runnable report) {
    }

    IoSession(String prog, PrintStream out, PrintStream err, Map<String, IoCommand> commands) {
        this.prog = prog;
        this.out = out;
        this.err = err;
        this.commands = commands;
    }

    /** QEMU's error_report: program name first, on stderr. */
    void error(String message) {
        err.print(prog + ": " + message + "\n");
    }

    /** QEMU's warn_report. */
    void warn(String message) {
        err.print(prog + ": warning: " + message + "\n");
    }

    /**
     * Runs one command line: words split on single spaces, the first names
     * the command. Returns false when the command failed.
     */
    boolean execute(String line) {
        String[] argv = java.util.Arrays.stream(line.split(" ", -1)).filter(w -> !w.isEmpty())
                .toArray(String[]::new);
        if (argv.length == 0) {
            return true;
        }
        IoCommand ct = find(argv[0]);
        if (ct == null) {
            err.print("command \"" + argv[0] + "\" not found\n");
            return false;
        }
        try {
            return run(ct, argv) == 0;
        } catch (OutOfMemoryError e) {
            // A request's buffer did not fit in the heap: the command fails, the run goes on.
            error(argv[0] + ": not enough memory for this request (raise the JVM's -Xmx)");
            return false;
        }
    }

    IoCommand find(String name) {
        for (IoCommand c : commands.values()) {
            if (c.name().equals(name) || name.equals(c.altName())) {
                return c;
            }
        }
        return null;
    }

    private int run(IoCommand ct, String[] argv) {
        if (!ct.global() && !ct.noFileOk() && drive == null) {
            err.print("no file open, try 'help open'\n");
            return -1;
        }
        int argc = argv.length - 1;
        if (argc < ct.argMin() || (ct.argMax() != -1 && argc > ct.argMax())) {
            if (ct.argMax() == -1) {
                err.print("bad argument count " + argc + " to " + argv[0] + ", expected at least " + ct.argMin()
                        + " arguments\n");
            } else if (ct.argMin() == ct.argMax()) {
                err.print("bad argument count " + argc + " to " + argv[0] + ", expected " + ct.argMin()
                        + " arguments\n");
            } else {
                err.print("bad argument count " + argc + " to " + argv[0] + ", expected between " + ct.argMin()
                        + " and " + ct.argMax() + " arguments\n");
            }
            return -1;
        }
        // qemu-io asks for write permission before the command parses anything.
        if (ct.writes() && drive != null && drive.isReadOnly()) {
            error("Block node is read-only");
            return -1;
        }
        if (ct.writes()) {
            writePermission = true;
        }
        return ct.action().run(this, argv);
    }

    /** Queues the report of an aio request; see {@link #drainAio()}. */
    void completeLater(boolean failedAtSubmit, Runnable report) {
        pending.add(new AioCompletion(failedAtSubmit, report));
    }

    /**
     * Prints the reports of finished aio requests, as qemu-io does when its
     * main loop runs (at the next request, aio_flush, sleep, close, exit).
     * Requests refused at submission complete through bottom halves, which
     * QEMU runs newest first and before the thread pool's completions; those
     * are reported in submission order here.
     */
    void drainAio() {
        BlkdebugNode debug = blkdebug();
        if (debug != null) {
            aio.settleAll(debug);
        }
        List<AioCompletion> now;
        synchronized (pending) {
            if (pending.isEmpty()) {
                return;
            }
            now = new ArrayList<>(pending);
            pending.clear();
        }
        for (int i = now.size() - 1; i >= 0; i--) {
            if (now.get(i).failedAtSubmit()) {
                now.get(i).report().run();
            }
        }
        for (AioCompletion c : now) {
            if (!c.failedAtSubmit()) {
                c.report().run();
            }
        }
    }

    /**
     * Runs an aio request. On an image with a blkdebug node it runs on its own
     * thread, since a breakpoint may stop it; elsewhere on this one.
     */
    void submitAio(Runnable request) {
        BlkdebugNode debug = blkdebug();
        if (debug == null) {
            request.run();
        } else {
            aio.submit(request, debug);
        }
    }

    /** The blkdebug node of the open image (QEMU looks down the primary children), or null. */
    BlkdebugNode blkdebug() {
        return drive == null ? null : BlkdebugNode.below(drive.root());
    }

    /** Waits until every aio request is finished or stopped at a breakpoint. */
    void settleAio() {
        BlkdebugNode debug = blkdebug();
        if (debug != null) {
            aio.settleAll(debug);
        }
    }

    /** Closes the image, reporting pending aio first. */
    void closeImage() {
        drainAio();
        if (drive != null) {
            BlkdebugNode debug = blkdebug();
            if (debug != null) {
                debug.clearBreakpoints(); // the close flushes: it must not stop at a breakpoint with no one to resume it
                drainAio();
            }
            try {
                drive.close();
            } catch (BlockException e) {
                error(e.getMessage());
            }
            drive = null;
            request = null;
            writePermission = false;
        }
    }

    /** The text strerror gives for a failed request. */
    static String strerror(BlockException e) {
        return e.errno().text();
    }
}
