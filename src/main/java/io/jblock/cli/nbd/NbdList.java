package io.jblock.cli.nbd;

import io.jblock.nbd.Nbd;
import io.jblock.nbd.NbdClient;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** {@code -L}: list another server's exports, printed as qemu-nbd 7.2 prints them. */
final class NbdList {
    /** Names of transmission flag bits 1..11, in bit order, as qemu-nbd prints them. */
    private static final String[] FLAG_NAMES = {
        "readonly", "flush", "fua", "rotational", "trim", "zeroes", "df", "multi", "resize", "cache", "fast-zero",
    };

    private NbdList() {
    }

    static int run(String prog, NbdOptions o, PrintStream out, PrintStream err) {
        String where = o.unixSocket != null ? o.unixSocket
                : ("0.0.0.0".equals(o.bind) ? "localhost" : o.bind) + ":" + o.port;
        NbdClient c;
        try {
            c = o.unixSocket != null ? NbdClient.connectUnix(Path.of(o.unixSocket))
                    : NbdClient.connectTcp("0.0.0.0".equals(o.bind) ? "localhost" : o.bind, o.port);
        } catch (IOException e) {
            err.println(prog + ": Failed to connect to '" + where + "': " + reason(e));
            return 1;
        }
        try (c) {
            c.sendClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
            c.structuredReplies();
            List<NbdClient.ExportEntry> exports = c.list();
            out.println("exports available: " + exports.size());
            for (NbdClient.ExportEntry e : exports) {
                NbdClient.ExportInfo info = c.info(e.name(), false);
                Map<String, Integer> contexts = c.metaContexts(false, e.name(), List.of());
                out.println(" export: '" + e.name() + "'");
                if (info.description() != null && !info.description().isEmpty()) {
                    out.println("  description: " + info.description());
                }
                out.println("  size:  " + info.size());
                StringBuilder f = new StringBuilder();
                for (int i = 0; i < FLAG_NAMES.length; i++) {
                    if ((info.flags() & (Nbd.FLAG_READ_ONLY << i)) != 0) {
                        f.append(' ').append(FLAG_NAMES[i]);
                    }
                }
                out.println("  flags: 0x" + Integer.toHexString(info.flags()) + " (" + f + " )");
                if (info.minBlock() != 0) {
                    out.println("  min block: " + info.minBlock());
                    out.println("  opt block: " + info.preferredBlock());
                    out.println("  max block: " + info.maxBlock());
                }
                out.println("  available meta contexts: " + contexts.size());
                for (String name : contexts.keySet()) {
                    out.println("   " + name);
                }
            }
            c.abort();
            return 0;
        } catch (IOException e) {
            err.println(prog + ": " + e.getMessage());
            return 1;
        }
    }

    private static String reason(IOException e) {
        String m = e.getMessage();
        if (e instanceof java.net.ConnectException || (m != null && m.contains("Connection refused"))) {
            return "Connection refused";
        }
        if (e instanceof java.net.SocketException && m != null && m.contains("No such file")) {
            return "No such file or directory";
        }
        return m == null ? e.toString() : m;
    }
}
