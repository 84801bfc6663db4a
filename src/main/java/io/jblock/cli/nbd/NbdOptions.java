package io.jblock.cli.nbd;

import io.jblock.block.AioMode;
import io.jblock.block.CacheMode;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.cli.Getopt;
import io.jblock.nbd.Nbd;

import java.io.PrintStream;
import java.util.List;

/** qemu-nbd's command line, parsed and checked with qemu-nbd 7.2's rules and messages. */
final class NbdOptions {
    String bind = "0.0.0.0";
    int port = 10809;
    String unixSocket;
    long offset;
    boolean readOnly;
    boolean snapshot;
    boolean allocationDepth;
    boolean list;
    boolean persistent;
    boolean verbose;
    boolean imageOpts;
    boolean fork;
    String pidFile;
    int shared = 1;
    String format;
    String exportName;
    String description;
    CacheMode cache = CacheMode.WRITEBACK;
    AioMode aio = AioMode.THREADS;
    DiscardMode discard = DiscardMode.IGNORE;
    DetectZeroes detectZeroes = DetectZeroes.OFF;
    String filename;
    SocketActivation socketActivation;

    /** The options, or null after --help/--version were printed. */
    static NbdOptions parse(String prog, String[] args, PrintStream out, PrintStream err)
            throws NbdTool.UsageException {
        NbdOptions o = new NbdOptions();
        Getopt g = new Getopt(io.jblock.cli.Main.argv0(prog), args, NbdTool.SHORT_OPTS.substring(1), NbdTool.LONG_OPTS, err);
        boolean seenCache = false;
        boolean seenAio = false;
        boolean seenDiscard = false;
        boolean perDevice = false;
        boolean seenTcp = false;
        String loadSnapshot = null;
        String bitmap = null;
        String tlsCreds = null;
        int c;
        while ((c = g.next()) != -1) {
            String a = g.optarg();
            switch (c) {
                case 'h' -> {
                    NbdHelp.print(prog, out);
                    return null;
                }
                case 'V' -> {
                    out.println(prog + " " + io.jblock.cli.Main.versionLine());
                    return null;
                }
                case 'b' -> {
                    o.bind = a;
                    seenTcp = true;
                }
                case 'p' -> {
                    o.port = parsePort(o.bind, a);
                    seenTcp = true;
                }
                case 'k' -> {
                    o.unixSocket = a;
                    if (a.length() > 107) {
                        throw new NbdTool.UsageException("socket path too long", NbdTool.TryHelp.NONE);
                    }
                }
                case 'o' -> {
                    o.offset = parseOffset(a);
                    perDevice = true;
                }
                case 'r' -> o.readOnly = true;
                case 's' -> o.snapshot = true;
                case 'n', NbdTool.OPT_CACHE -> {
                    if (seenCache) {
                        throw new NbdTool.UsageException("-n and --cache can only be specified once", NbdTool.TryHelp.NONE);
                    }
                    seenCache = true;
                    o.cache = c == 'n' ? CacheMode.NONE : NbdTool.parseCache(a);
                    perDevice = true;
                }
                case NbdTool.OPT_AIO -> {
                    if (seenAio) {
                        throw new NbdTool.UsageException("--aio can only be specified once", NbdTool.TryHelp.NONE);
                    }
                    seenAio = true;
                    o.aio = NbdTool.parseAio(a);
                    perDevice = true;
                }
                case NbdTool.OPT_DISCARD -> {
                    if (seenDiscard) {
                        throw new NbdTool.UsageException("--discard can only be specified once", NbdTool.TryHelp.NONE);
                    }
                    seenDiscard = true;
                    o.discard = NbdTool.parseDiscard(a);
                    perDevice = true;
                }
                case NbdTool.OPT_DETECT_ZEROES -> {
                    o.detectZeroes = NbdTool.parseDetectZeroes(a);
                    perDevice = true;
                }
                case 'e' -> o.shared = parseShared(a);
                case 'f' -> {
                    o.format = a;
                    perDevice = true;
                }
                case 't' -> o.persistent = true;
                case 'x' -> {
                    if (a.length() > Nbd.MAX_STRING) {
                        throw new NbdTool.UsageException("export name '" + a + "' too long", NbdTool.TryHelp.NONE);
                    }
                    o.exportName = a;
                    perDevice = true;
                }
                case 'D' -> {
                    if (a.length() > Nbd.MAX_STRING) {
                        throw new NbdTool.UsageException("export description '" + a + "' too long", NbdTool.TryHelp.NONE);
                    }
                    o.description = a;
                    perDevice = true;
                }
                case 'v' -> o.verbose = true;
                case 'A' -> {
                    o.allocationDepth = true;
                    perDevice = true;
                }
                case 'B' -> {
                    bitmap = a;
                    perDevice = true;
                }
                case 'l' -> {
                    loadSnapshot = a;
                    perDevice = true;
                }
                case 'L' -> o.list = true;
                case 'c', 'd' -> throw new NbdTool.UsageException(
                        "the kernel NBD client (-c/-d) is not supported by jblock; use nbd-client or "
                                + "'nbdfuse' with the exported socket instead", NbdTool.TryHelp.NONE);
                case NbdTool.OPT_IMAGE_OPTS -> o.imageOpts = true;
                case NbdTool.OPT_FORK -> o.fork = true;
                case NbdTool.OPT_PID_FILE -> o.pidFile = a;
                case NbdTool.OPT_TLSCREDS -> tlsCreds = a;
                case NbdTool.OPT_OBJECT -> throw new NbdTool.UsageException(
                        "--object is not supported yet: '" + a + "'", NbdTool.TryHelp.NONE);
                case NbdTool.OPT_TLSAUTHZ, NbdTool.OPT_TLSHOSTNAME, NbdTool.OPT_SELINUX_LABEL, 'T' -> {
                    // Accepted for compatibility; nothing to trace or label here.
                }
                default -> throw new NbdTool.UsageException(null, NbdTool.TryHelp.PREFIXED);
            }
        }
        List<String> rest = g.operands();
        if (o.list) {
            if (!rest.isEmpty()) {
                throw new NbdTool.UsageException("List mode is incompatible with a file name", NbdTool.TryHelp.NONE);
            }
            if (perDevice || o.readOnly || o.snapshot) {
                throw new NbdTool.UsageException("List mode is incompatible with per-device settings", NbdTool.TryHelp.NONE);
            }
            if (o.fork) {
                throw new NbdTool.UsageException("List mode is incompatible with forking", NbdTool.TryHelp.NONE);
            }
        } else if (rest.size() != 1) {
            throw new NbdTool.UsageException("Invalid number of arguments", NbdTool.TryHelp.PLAIN);
        } else {
            o.filename = rest.getFirst();
        }
        if (tlsCreds != null) {
            throw new NbdTool.UsageException("Failed to get TLS creds: No TLS credentials with id '" + tlsCreds + "'",
                    NbdTool.TryHelp.NONE);
        }
        if (o.exportName == null) {
            o.exportName = "";
        }
        if (o.list) {
            return o;
        }
        if (o.detectZeroes == DetectZeroes.UNMAP && o.discard != DiscardMode.UNMAP) {
            throw new NbdTool.UsageException("setting detect-zeroes to unmap is not allowed without setting "
                    + "discard operation to unmap", NbdTool.TryHelp.NONE);
        }
        if (loadSnapshot != null) {
            throw new NbdTool.UsageException("Failed to load snapshot: Block format '"
                    + (o.format == null ? "raw" : o.format) + "' used by device '' does not support temporarily "
                    + "loading internal snapshots", NbdTool.TryHelp.NONE);
        }
        if (bitmap != null) {
            throw new NbdTool.UsageException("Bitmap '" + bitmap + "' is not found", NbdTool.TryHelp.NONE);
        }
        o.socketActivation = SocketActivation.fromEnvironment();
        if (o.socketActivation != null && (o.unixSocket != null || seenTcp)) {
            throw new NbdTool.UsageException("-p, -b and -k cannot be used with socket activation", NbdTool.TryHelp.NONE);
        }
        return o;
    }

    private static int parsePort(String bind, String a) throws NbdTool.UsageException {
        try {
            int p = Integer.parseInt(a);
            if (p >= 0 && p <= 65535) {
                return p;
            }
        } catch (NumberFormatException ignored) {
            // Falls through to qemu-nbd's resolver message.
        }
        throw new NbdTool.UsageException("address resolution failed for " + bind + ":" + a
                + ": Servname not supported for ai_socktype", NbdTool.TryHelp.NONE);
    }

    private static long parseOffset(String a) throws NbdTool.UsageException {
        try {
            long v = Long.decode(a);
            if (v >= 0) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // Falls through to the message.
        }
        throw new NbdTool.UsageException("Invalid offset '" + a + "'", NbdTool.TryHelp.NONE);
    }

    private static int parseShared(String a) throws NbdTool.UsageException {
        try {
            int v = Integer.decode(a);
            if (v >= 0) {
                // As qemu-nbd, 0 means no limit.
                return v == 0 ? Integer.MAX_VALUE : v;
            }
        } catch (NumberFormatException ignored) {
            // Falls through to the message.
        }
        throw new NbdTool.UsageException("Invalid shared device number '" + a + "'", NbdTool.TryHelp.NONE);
    }
}
