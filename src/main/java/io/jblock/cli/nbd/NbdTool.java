package io.jblock.cli.nbd;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.CacheMode;
import io.jblock.block.Choice;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.cli.Getopt;
import io.jblock.cli.Tool;
import io.jblock.format.RawNode;
import io.jblock.nbd.MemoryBudget;
import io.jblock.nbd.NbdExport;
import io.jblock.nbd.NbdServer;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.KeyValueParser;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code jblock nbd}: qemu-nbd 7.2's command line. Serves one image as one
 * export over TCP, a Unix socket, or a socket handed over by systemd socket
 * activation; or, with {@code -L}, lists another server's exports.
 */
public final class NbdTool implements Tool {
    static final String SHORT_OPTS = "-hVb:o:p:rsnc:dvk:e:f:tl:x:T:D:AB:L";
    // Values for long options without a short form.
    static final int OPT_CACHE = 256;
    static final int OPT_AIO = 257;
    static final int OPT_DISCARD = 258;
    static final int OPT_DETECT_ZEROES = 259;
    static final int OPT_OBJECT = 260;
    static final int OPT_TLSCREDS = 261;
    static final int OPT_IMAGE_OPTS = 262;
    static final int OPT_FORK = 263;
    static final int OPT_TLSAUTHZ = 264;
    static final int OPT_PID_FILE = 265;
    static final int OPT_SELINUX_LABEL = 266;
    static final int OPT_TLSHOSTNAME = 267;

    static final Getopt.LongOpt[] LONG_OPTS = {
        new Getopt.LongOpt("bind", Getopt.Arg.REQUIRED, 'b'),
        new Getopt.LongOpt("port", Getopt.Arg.REQUIRED, 'p'),
        new Getopt.LongOpt("socket", Getopt.Arg.REQUIRED, 'k'),
        new Getopt.LongOpt("offset", Getopt.Arg.REQUIRED, 'o'),
        new Getopt.LongOpt("read-only", Getopt.Arg.NONE, 'r'),
        new Getopt.LongOpt("allocation-depth", Getopt.Arg.NONE, 'A'),
        new Getopt.LongOpt("bitmap", Getopt.Arg.REQUIRED, 'B'),
        new Getopt.LongOpt("connect", Getopt.Arg.REQUIRED, 'c'),
        new Getopt.LongOpt("disconnect", Getopt.Arg.NONE, 'd'),
        new Getopt.LongOpt("list", Getopt.Arg.NONE, 'L'),
        new Getopt.LongOpt("snapshot", Getopt.Arg.NONE, 's'),
        new Getopt.LongOpt("load-snapshot", Getopt.Arg.REQUIRED, 'l'),
        new Getopt.LongOpt("nocache", Getopt.Arg.NONE, 'n'),
        new Getopt.LongOpt("cache", Getopt.Arg.REQUIRED, OPT_CACHE),
        new Getopt.LongOpt("aio", Getopt.Arg.REQUIRED, OPT_AIO),
        new Getopt.LongOpt("discard", Getopt.Arg.REQUIRED, OPT_DISCARD),
        new Getopt.LongOpt("detect-zeroes", Getopt.Arg.REQUIRED, OPT_DETECT_ZEROES),
        new Getopt.LongOpt("shared", Getopt.Arg.REQUIRED, 'e'),
        new Getopt.LongOpt("format", Getopt.Arg.REQUIRED, 'f'),
        new Getopt.LongOpt("persistent", Getopt.Arg.NONE, 't'),
        new Getopt.LongOpt("export-name", Getopt.Arg.REQUIRED, 'x'),
        new Getopt.LongOpt("description", Getopt.Arg.REQUIRED, 'D'),
        new Getopt.LongOpt("verbose", Getopt.Arg.NONE, 'v'),
        new Getopt.LongOpt("object", Getopt.Arg.REQUIRED, OPT_OBJECT),
        new Getopt.LongOpt("tls-creds", Getopt.Arg.REQUIRED, OPT_TLSCREDS),
        new Getopt.LongOpt("tls-hostname", Getopt.Arg.REQUIRED, OPT_TLSHOSTNAME),
        new Getopt.LongOpt("tls-authz", Getopt.Arg.REQUIRED, OPT_TLSAUTHZ),
        new Getopt.LongOpt("image-opts", Getopt.Arg.NONE, OPT_IMAGE_OPTS),
        new Getopt.LongOpt("trace", Getopt.Arg.REQUIRED, 'T'),
        new Getopt.LongOpt("fork", Getopt.Arg.NONE, OPT_FORK),
        new Getopt.LongOpt("pid-file", Getopt.Arg.REQUIRED, OPT_PID_FILE),
        new Getopt.LongOpt("selinux-label", Getopt.Arg.REQUIRED, OPT_SELINUX_LABEL),
        new Getopt.LongOpt("help", Getopt.Arg.NONE, 'h'),
        new Getopt.LongOpt("version", Getopt.Arg.NONE, 'V'),
    };

    /** How qemu-nbd follows an error with its "Try ... --help" line. */
    enum TryHelp {
        /** No such line. */
        NONE,
        /** "Try `qemu-nbd --help' ...", after argument count errors. */
        PLAIN,
        /** "qemu-nbd: Try `qemu-nbd --help' ...", after getopt's own message. */
        PREFIXED
    }

    /** A usage error: the message (null when getopt already printed it) and the help line that follows. */
    static final class UsageException extends Exception {
        final TryHelp tryHelp;

        UsageException(String message, TryHelp tryHelp) {
            super(message);
            this.tryHelp = tryHelp;
        }
    }

    @Override
    public int run(String prog, String[] args, InputStream in, PrintStream out, PrintStream err) {
        NbdOptions o;
        try {
            o = NbdOptions.parse(prog, args, out, err);
        } catch (UsageException e) {
            if (e.getMessage() != null) {
                err.println(prog + ": " + e.getMessage());
            }
            switch (e.tryHelp) {
                case PLAIN -> err.println("Try `" + io.jblock.cli.Main.argv0(prog) + " --help' for more information.");
                case PREFIXED -> err.println(prog + ": Try `" + io.jblock.cli.Main.argv0(prog)
                        + " --help' for more information.");
                case NONE -> { }
            }
            return 1;
        }
        if (o == null) {
            return 0; // --help or --version
        }
        try {
            if (o.list) {
                return NbdList.run(prog, o, out, err);
            }
            if (o.fork && !NbdFork.isChild()) {
                return NbdFork.forkAndWait(prog, args, err);
            }
            return serve(prog, o, err);
        } catch (UsageException e) {
            err.println(prog + ": " + e.getMessage());
            return 1;
        }
    }

    private int serve(String prog, NbdOptions o, PrintStream err) throws UsageException {
        if (o.verbose) {
            verboseLogging(prog, err);
        }
        Drive drive;
        try {
            drive = openDrive(o, err);
        } catch (BlockException e) {
            throw new UsageException("Failed to blk_new_open '" + o.filename + "': " + e.getMessage(), TryHelp.NONE);
        }
        try (drive) {
            ServerSocketChannel listener = o.socketActivation != null ? null : listen(o);
            NbdExport export = new NbdExport(o.exportName, o.description, drive, o.shared > 1, o.allocationDepth);
            NbdServer server = new NbdServer(List.of(export), o.shared, o.persistent,
                    MemoryBudget.DEFAULT_BYTES);
            writePidFile(o);
            NbdFork.signalReady();
            try {
                if (o.socketActivation != null) {
                    o.socketActivation.serve(server);
                } else {
                    try (listener) {
                        server.serve(listener);
                    }
                    server.awaitStopped();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IOException e) {
                err.println(prog + ": " + e.getMessage());
                return 1;
            } finally {
                if (o.unixSocket != null) {
                    try {
                        Files.deleteIfExists(Path.of(o.unixSocket));
                    } catch (IOException ignored) {
                        // The socket file is left behind; a later bind replaces it.
                    }
                }
                if (o.pidFile != null) {
                    try {
                        Files.deleteIfExists(Path.of(o.pidFile));
                    } catch (IOException ignored) {
                        // As qemu-nbd, a stale pid file is harmless.
                    }
                }
            }
        } catch (BlockException e) {
            err.println(prog + ": " + e.getMessage());
            return 1;
        }
        return 0;
    }

    /** -v: jblock's debug messages (connections, refused options and requests) to stderr. */
    private static void verboseLogging(String prog, PrintStream err) {
        java.util.logging.Logger jblock = java.util.logging.Logger.getLogger("io.jblock");
        java.util.logging.StreamHandler h = new java.util.logging.StreamHandler(err, new java.util.logging.Formatter() {
            @Override
            public String format(java.util.logging.LogRecord r) {
                return prog + ": " + formatMessage(r) + System.lineSeparator();
            }
        }) {
            @Override
            public synchronized void publish(java.util.logging.LogRecord r) {
                super.publish(r);
                flush();
            }
        };
        h.setLevel(java.util.logging.Level.ALL);
        jblock.setLevel(java.util.logging.Level.FINE);
        jblock.addHandler(h);
        jblock.setUseParentHandlers(false);
    }

    private static Drive openDrive(NbdOptions o, PrintStream err) throws BlockException {
        DriveConfig c = new DriveConfig();
        if (o.imageOpts) {
            c.options = new NodeOptions(KeyValueParser.parse(o.filename, null));
        } else {
            c.filename = o.filename;
            if (o.format != null) {
                c.options.put("driver", o.format);
            }
        }
        c.cache = o.cache.options();
        c.readOnly = o.readOnly;
        c.snapshot = o.snapshot;
        c.discard = o.discard;
        c.detectZeroes = o.detectZeroes;
        c.aio = o.aio;
        c.use = io.jblock.options.ImageUse.EXPORT;
        c.warnings = err::println;
        Drive d = DriveOpener.standard().open(c);
        if (o.offset == 0) {
            return d;
        }
        // -o: export the image from an offset on, as a raw window over the opened graph.
        BlockNode root = d.root();
        long len = root.length();
        if (o.offset > len) {
            d.close();
            throw new BlockException(io.jblock.block.Errno.EINVAL, "Offset (" + o.offset
                    + ") cannot be greater than size of the containing file (" + len + ")");
        }
        RawNode window = new RawNode(new NodeSettings(NodeSettings.autoName(), root.isReadOnly(),
                root.settings().direct(), root.settings().noFlush(), root.settings().discard()), root, o.offset, -1);
        return new Drive(d.id(), window, d.writeback(), d.isReadOnly(), d.detectZeroes());
    }

    private static ServerSocketChannel listen(NbdOptions o) throws UsageException {
        try {
            if (o.unixSocket != null) {
                Path p = Path.of(o.unixSocket);
                ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    Files.deleteIfExists(p);
                    bindUnix(s, p);
                } catch (IOException e) {
                    s.close();
                    throw new UsageException("Failed to bind socket to " + o.unixSocket + ": " + describe(e), TryHelp.NONE);
                }
                return s;
            }
            ServerSocketChannel s = ServerSocketChannel.open();
            try {
                s.setOption(java.net.StandardSocketOptions.SO_REUSEADDR, true);
                s.bind(new InetSocketAddress(o.bind, o.port), 128);
            } catch (IOException e) {
                s.close();
                throw new UsageException("Failed to bind socket to " + o.bind + ":" + o.port + ": " + describe(e),
                        TryHelp.NONE);
            }
            return s;
        } catch (IOException e) {
            throw new UsageException("Failed to create a socket: " + describe(e), TryHelp.NONE);
        }
    }

    /**
     * Binds and listens on the Unix socket {@code p} so that the socket file appears only once it accepts
     * connections. The JDK binds (which creates the file) and then listens, and on a loaded machine 0.1 s
     * was measured between the two: a client that saw the file and connected in that window got
     * ECONNREFUSED (how {@code nbdinfo --can multi-conn} once exited 1 in NbdInteropIT). So this binds a
     * temporary name beside {@code p}, listens, and renames it to {@code p}, which is atomic. Where the
     * temporary name would not fit a socket address (108 bytes), it binds {@code p} itself.
     */
    private static void bindUnix(ServerSocketChannel s, Path p) throws IOException {
        Path tmp = p.resolveSibling("." + ProcessHandle.current().pid() + ".nbd.tmp");
        if (tmp.toString().getBytes(StandardCharsets.UTF_8).length >= 108) {
            s.bind(UnixDomainSocketAddress.of(p));
            return;
        }
        Files.deleteIfExists(tmp);
        s.bind(UnixDomainSocketAddress.of(tmp));
        try {
            Files.move(tmp, p, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    private static String describe(IOException e) {
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "No such file or directory";
        }
        if (e instanceof java.nio.file.AccessDeniedException) {
            return "Permission denied";
        }
        String m = e.getMessage();
        if (m != null && m.contains("Address already in use")) {
            return "Address already in use";
        }
        return m == null ? e.toString() : m;
    }

    private static void writePidFile(NbdOptions o) throws UsageException {
        if (o.pidFile == null) {
            return;
        }
        try {
            Files.writeString(Path.of(o.pidFile), ProcessHandle.current().pid() + "\n", StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new UsageException("Failed to write pid file " + o.pidFile + ": " + describe(e), TryHelp.NONE);
        }
    }

    /** Parsing shared with the options class: enum values through their one table, with qemu-nbd's messages. */
    static CacheMode parseCache(String v) throws UsageException {
        return Choice.parse(CacheMode.class, v).orElseThrow(
                () -> new UsageException("Invalid cache mode `" + v + "'", TryHelp.NONE));
    }

    static AioMode parseAio(String v) throws UsageException {
        return Choice.parse(AioMode.class, v).orElseThrow(
                () -> new UsageException("Invalid aio mode '" + v + "'", TryHelp.NONE));
    }

    static DiscardMode parseDiscard(String v) throws UsageException {
        return Choice.parse(DiscardMode.class, v).orElseThrow(
                () -> new UsageException("Invalid discard mode `" + v + "'", TryHelp.NONE));
    }

    static DetectZeroes parseDetectZeroes(String v) throws UsageException {
        return Choice.parse(DetectZeroes.class, v).orElseThrow(() -> new UsageException(
                "Failed to parse detect_zeroes mode: invalid parameter value: " + v, TryHelp.NONE));
    }
}
