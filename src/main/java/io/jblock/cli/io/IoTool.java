package io.jblock.cli.io;

import io.jblock.block.AioMode;
import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.Choice;
import io.jblock.block.DiscardMode;
import io.jblock.cli.Getopt;
import io.jblock.cli.Getopt.Arg;
import io.jblock.cli.Getopt.LongOpt;
import io.jblock.cli.Tool;
import io.jblock.options.CacheModes;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code jblock io}: qemu-io 7.2's command line and commands over a jblock
 * drive. Commands come from {@code -c} (in order) or, without any, from
 * standard input, one per line after a "PROG> " prompt (printed whether or
 * not the input is a terminal, as qemu-io does). The exit status is 1 when
 * opening the image or any command failed, 0 otherwise.
 */
public final class IoTool implements Tool {
    /** The QEMU version whose behaviour this tool reproduces. */
    static final String QEMU_VERSION = "7.2.22";
    /** qemu-io reads a command line with fgets into a buffer of this size. */
    private static final int LINE_BUFFER = 1024;

    private static final int OPTION_OBJECT = 256;
    private static final int OPTION_IMAGE_OPTS = 257;

    private static final LongOpt[] LONG_OPTIONS = {
        new LongOpt("help", Arg.NONE, 'h'),
        new LongOpt("version", Arg.NONE, 'V'),
        new LongOpt("cmd", Arg.REQUIRED, 'c'),
        new LongOpt("format", Arg.REQUIRED, 'f'),
        new LongOpt("read-only", Arg.NONE, 'r'),
        new LongOpt("snapshot", Arg.NONE, 's'),
        new LongOpt("nocache", Arg.NONE, 'n'),
        new LongOpt("copy-on-read", Arg.NONE, 'C'),
        new LongOpt("misalign", Arg.NONE, 'm'),
        new LongOpt("native-aio", Arg.NONE, 'k'),
        new LongOpt("aio", Arg.REQUIRED, 'i'),
        new LongOpt("discard", Arg.REQUIRED, 'd'),
        new LongOpt("cache", Arg.REQUIRED, 't'),
        new LongOpt("trace", Arg.REQUIRED, 'T'),
        new LongOpt("object", Arg.REQUIRED, OPTION_OBJECT),
        new LongOpt("image-opts", Arg.NONE, OPTION_IMAGE_OPTS),
        new LongOpt("force-share", Arg.NONE, 'U'),
    };


    @Override
    public int run(String prog, String[] args, InputStream in, PrintStream out, PrintStream err) {
        IoSession s = new IoSession(prog, out, err, CommandTable.all());
        try {
            return run(s, args, in);
        } finally {
            out.flush();
            err.flush();
        }
    }

    private int run(IoSession s, String[] args, InputStream in) {
        ImageOpener.Request r = new ImageOpener.Request();
        List<String> commands = new ArrayList<>();
        String format = null;
        boolean imageOpts = false;
        ObjectOption objects = new ObjectOption();
        Getopt g = new Getopt(io.jblock.cli.Main.argv0(s.prog), args, "hVc:d:f:rsnCmki:t:T:U", LONG_OPTIONS, s.err);
        for (int c; (c = g.next()) != -1; ) {
            switch (c) {
                case 's' -> r.snapshot = true;
                case 'n' -> r.cache = CacheMode.NONE.options();
                case 'C' -> r.copyOnRead = true;
                case 'd' -> {
                    DiscardMode d = Choice.parse(DiscardMode.class, g.optarg()).orElse(null);
                    if (d == null) {
                        s.error("Invalid discard option: " + g.optarg());
                        return 1;
                    }
                    r.discard = d;
                }
                case 'f' -> format = g.optarg();
                case 'c' -> commands.add(g.optarg());
                case 'r' -> r.readOnly = true;
                case 'm' -> { /* misaligned buffers only matter to O_DIRECT in C; Java's are copied */ }
                case 'k' -> r.aio = AioMode.NATIVE;
                case 'i' -> {
                    AioMode m = Choice.parse(AioMode.class, g.optarg()).orElse(null);
                    if (m == null) {
                        s.error("Invalid aio option: " + g.optarg());
                        return 1;
                    }
                    r.aio = m;
                }
                case 't' -> {
                    CacheOptions cache = CacheModes.parse(g.optarg()).orElse(null);
                    if (cache == null) {
                        s.error("Invalid cache option: " + g.optarg());
                        return 1;
                    }
                    r.cache = cache;
                }
                case 'T' -> {
                    if (!TraceOption.apply(s, g.optarg())) {
                        return 1;
                    }
                }
                case 'V' -> {
                    s.out.print(s.prog + " version " + QEMU_VERSION + " (jblock " + jblockVersion() + ")\n");
                    // The first line is what scripts parse; the second says what this is, instead of QEMU's copyright.
                    s.out.print("jblock: a reimplementation of qemu-io's interface, not QEMU\n");
                    return 0;
                }
                case 'h' -> {
                    usage(s);
                    return 0;
                }
                case 'U' -> r.forceShare = true;
                case OPTION_OBJECT -> {
                    boolean[] exit = {false};
                    if (!objects.add(s, g.optarg(), exit)) {
                        return 1;
                    }
                    if (exit[0]) {
                        return 0;
                    }
                }
                case OPTION_IMAGE_OPTS -> imageOpts = true;
                default -> {
                    usage(s);
                    return 1;
                }
            }
        }
        List<String> operands = g.operands();
        if (operands.size() > 1) {
            usage(s);
            return 1;
        }
        if (format != null && imageOpts) {
            s.error("--image-opts and -f are mutually exclusive");
            return 1;
        }
        s.imageOpts = imageOpts;
        if (operands.size() == 1) {
            if (imageOpts) {
                QemuOptsText.parse(operands.getFirst(), r.options, s::warn);
            } else {
                r.filename = operands.getFirst();
                if (format != null) {
                    r.options.put("driver", format);
                }
            }
            if (!SessionCommands.openFile(s, r)) {
                return 1;
            }
        }
        boolean failed = commandLoop(s, commands, in);
        s.closeImage();
        if (s.killedWith != null) {
            return s.killedWith;
        }
        return failed ? 1 : 0;
    }

    /** Runs the -c commands, or else the lines of standard input; true when any failed. */
    private static boolean commandLoop(IoSession s, List<String> commands, InputStream in) {
        boolean failed = false;
        if (!commands.isEmpty()) {
            for (String c : commands) {
                failed |= !s.execute(c);
                if (s.quit) {
                    break;
                }
            }
            return failed;
        }
        InputStream input = new BufferedInputStream(in);
        while (!s.quit) {
            s.out.print(s.prog + "> ");
            s.out.flush();
            String line = readLine(input);
            if (line == null) {
                break;
            }
            failed |= !s.execute(line);
        }
        return failed;
    }

    /**
     * fgets into qemu-io's 1024-byte buffer: at most 1023 bytes, the newline
     * (if it fits) removed; a longer line arrives in pieces.
     */
    private static String readLine(InputStream in) {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        try {
            while (line.size() < LINE_BUFFER - 1) {
                int b = in.read();
                if (b < 0) {
                    if (line.size() == 0) {
                        return null;
                    }
                    break;
                }
                if (b == '\n') {
                    break;
                }
                line.write(b);
            }
        } catch (IOException e) {
            return null;
        }
        return line.toString(StandardCharsets.UTF_8);
    }

    private static String jblockVersion() {
        String v = IoTool.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    /**
     * Deliberate difference: qemu-io's usage ends by sending bug reports to
     * QEMU; jblock's bugs are not QEMU's.
     */
    static final String BUG_REPORTS = "Report bugs in jblock io to the jblock project, not to QEMU.\n";

    private static void usage(IoSession s) {
        String name = s.prog;
        s.out.print("Usage: " + name + " [OPTIONS]... [-c STRING]... [file]\n"
                + "QEMU Disk exerciser\n"
                + "\n"
                + "  --object OBJECTDEF   define an object such as 'secret' for\n"
                + "                       passwords and/or encryption keys\n"
                + "  --image-opts         treat file as option string\n"
                + "  -c, --cmd STRING     execute command with its arguments\n"
                + "                       from the given string\n"
                + "  -f, --format FMT     specifies the block driver to use\n"
                + "  -r, --read-only      export read-only\n"
                + "  -s, --snapshot       use snapshot file\n"
                + "  -n, --nocache        disable host cache, short for -t none\n"
                + "  -C, --copy-on-read   enable copy-on-read\n"
                + "  -m, --misalign       misalign allocations for O_DIRECT\n"
                + "  -k, --native-aio     use kernel AIO implementation\n"
                + "                       (Linux only, prefer use of -i)\n"
                + "  -i, --aio=MODE       use AIO mode (threads, native or io_uring)\n"
                + "  -t, --cache=MODE     use the given cache mode for the image\n"
                + "  -d, --discard=MODE   use the given discard mode for the image\n"
                + "  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
                + "                       specify tracing options\n"
                + "                       see qemu-img(1) man page for full description\n"
                + "  -U, --force-share    force shared permissions\n"
                + "  -h, --help           display this help and exit\n"
                + "  -V, --version        output version information and exit\n"
                + "\n"
                + "See '" + name + " -c help' for information on available commands.\n"
                + "\n"
                + BUG_REPORTS);
    }
}
