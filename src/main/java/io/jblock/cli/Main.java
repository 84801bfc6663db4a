package io.jblock.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The one binary. Started as {@code jblock TOOL ...}, or through a link
 * named after the QEMU tool it replaces ({@code qemu-img}, {@code qemu-io},
 * {@code qemu-nbd}), in which case it is that tool and names itself so in
 * every message. The launcher passes the name it was started by in the
 * system property {@code jblock.prog}.
 */
public final class Main {
    /** Subcommand → (QEMU tool name, factory). */
    private static final Map<String, Entry> TOOLS = new LinkedHashMap<>();

    private record Entry(String qemuName, Supplier<Tool> factory) {
    }

    static {
        TOOLS.put("img", new Entry("qemu-img", io.jblock.cli.img.ImgTool::new));
        TOOLS.put("io", new Entry("qemu-io", io.jblock.cli.io.IoTool::new));
        TOOLS.put("nbd", new Entry("qemu-nbd", io.jblock.cli.nbd.NbdTool::new));
        TOOLS.put("serve", new Entry(null, () -> notYet("serve")));
    }

    private Main() {
    }

    public static void main(String[] args) {
        String prog = System.getProperty("jblock.prog", "jblock");
        int rc;
        try {
            rc = run(prog, args, System.in, System.out, System.err);
        } catch (RuntimeException | Error e) {
            // A bug, not a user error: one line for the user, the trace only when asked for.
            System.err.println(prog + ": internal error: " + e);
            if (System.getenv("JBLOCK_DEBUG") != null) {
                e.printStackTrace();
            } else {
                System.err.println(prog + ": set JBLOCK_DEBUG=1 for the stack trace, and please report it");
            }
            rc = 1;
        }
        System.out.flush();
        System.err.flush();
        System.exit(rc);
    }

    /** Dispatches on the program name, then on the first argument. */
    public static int run(String invokedAs, String[] args, InputStream in, PrintStream out, PrintStream err) {
        for (Map.Entry<String, Entry> e : TOOLS.entrySet()) {
            if (invokedAs.equals(e.getValue().qemuName())) {
                return e.getValue().factory().get().run(invokedAs, args, in, out, err);
            }
        }
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h")) {
            usage(out);
            return args.length == 0 ? 1 : 0;
        }
        if (args[0].equals("--version") || args[0].equals("-V")) {
            out.println("jblock " + version());
            return 0;
        }
        Entry tool = TOOLS.get(args[0]);
        if (tool == null) {
            err.println("jblock: unknown command '" + args[0] + "' (try 'jblock --help')");
            return 1;
        }
        return tool.factory().get().run("jblock " + args[0], Arrays.copyOfRange(args, 1, args.length), in, out, err);
    }

    /**
     * The tool's argv[0] as it was invoked (a path, when started by path), which
     * glibc's getopt messages and QEMU's "Try `argv0 --help'" lines print; the
     * short {@code prog} otherwise (in-process runs, or {@code jblock TOOL}).
     */
    public static String argv0(String prog) {
        String a = System.getProperty("jblock.argv0");
        if (a != null && prog.equals(System.getProperty("jblock.prog"))) {
            return a;
        }
        return prog;
    }

    /** What {@code -V} prints after the tool's name. */
    public static String versionLine() {
        return "(jblock " + version() + ")";
    }

    static String version() {
        String v = Main.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    private static void usage(PrintStream out) {
        out.println("""
                usage: jblock COMMAND [ARGS...]

                A virtual-disk block layer with QEMU-compatible tools.

                Commands:
                  img     create, inspect, check and convert images (as qemu-img)
                  io      read and write images from the command line (as qemu-io)
                  nbd     serve an image over NBD (as qemu-nbd)
                  serve   the storage daemon

                Linked as qemu-img, qemu-io or qemu-nbd, jblock acts as that tool.""");
    }

    private static Tool notYet(String name) {
        return (prog, args, in, out, err) -> {
            err.println(prog + ": the '" + name + "' command is not available yet in this version of jblock");
            return 1;
        };
    }
}
