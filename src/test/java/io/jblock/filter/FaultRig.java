package io.jblock.filter;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.nbd.MemoryBudget;
import io.jblock.nbd.Nbd;
import io.jblock.nbd.NbdClient;
import io.jblock.nbd.NbdExport;
import io.jblock.nbd.NbdServer;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import io.jblock.testing.FaultyEngine;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * What the fault tests share: a drive opened over a {@link FaultyEngine}, a
 * blkdebug config file, an NBD server in front of the drive, and a close that
 * tolerates the failing flush a fault test leaves behind.
 */
final class FaultRig implements AutoCloseable {
    final FaultyEngine faulty = new FaultyEngine();
    private final Path dir;
    private Drive drive;
    private NbdServer server;

    FaultRig(Path dir) {
        this.dir = dir;
    }

    /** Opens {@code driveOptions}, with "IMG" standing for {@code img}, over the faulty engine. */
    Drive open(Path img, String driveOptions) throws Exception {
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), mode -> faulty));
        drive = opener.open(DriveConfig.parseDrive(driveOptions.replace("IMG", img.toString())));
        return drive;
    }

    Path config(String text) throws IOException {
        Path conf = dir.resolve("blkdebug.conf");
        Files.writeString(conf, text);
        return conf;
    }

    /** Serves {@code d} on a Unix socket and returns a client past the handshake, with structured replies. */
    NbdClient serve(Drive d) throws Exception {
        server = new NbdServer(List.of(new NbdExport("", "faulty disk", d, false, true)), 1, true,
                MemoryBudget.DEFAULT_BYTES);
        Path socket = dir.resolve("nbd.sock");
        ServerSocketChannel l = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        l.bind(UnixDomainSocketAddress.of(socket));
        Thread.ofVirtual().start(() -> {
            try {
                server.serve(l);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        NbdClient c = NbdClient.connectUnix(socket);
        c.sendClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
        c.structuredReplies();
        c.info("", true);
        return c;
    }

    /** Stops the server and closes the drive; may be called twice. */
    @Override
    public void close() throws Exception {
        if (server != null) {
            server.stop();
            server.awaitStopped();
            server = null;
        }
        if (drive != null) {
            try {
                drive.close();
            } catch (BlockException expected) {
                // the close flushes, and after a failed fdatasync every flush fails
            }
            drive = null;
        }
    }

    static byte[] filled(int n, int v) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) v);
        return b;
    }

    /** The errno {@code r} fails with, 0 when it succeeds. */
    static int errnoOf(ThrowingRunnable r) {
        try {
            r.run();
        } catch (BlockException e) {
            return e.errno().number();
        }
        return 0;
    }

    @FunctionalInterface
    interface ThrowingRunnable {
        void run() throws BlockException;
    }
}
