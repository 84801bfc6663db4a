package io.jblock.filter;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;
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
import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Faults under a qcow2 node, through the drive and an NBD client: a failed
 * fdatasync of the image file (FaultyEngine) fails that flush and every later
 * one (fsyncgate), blkdebug's EIO on flush_to_disk and ENOSPC on a data write
 * reach the client with their errno; data flushed before stays, and
 * {@code qemu-img check} finds no corruption afterwards.
 */
class Qcow2FaultsTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private final FaultyEngine faulty = new FaultyEngine();
    private Drive drive;
    private NbdServer server;
    private Path socket;

    private Drive open(String driveOptions) throws Exception {
        Path img = dir.resolve("disk.qcow2");
        if (!Files.exists(img)) {
            Peers.run(60, List.of(Peers.require("qemu-img"), "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k",
                    img.toString(), Long.toString(4L * MIB))).ok();
        }
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), mode -> faulty));
        drive = opener.open(DriveConfig.parseDrive(driveOptions.replace("IMG", img.toString())));
        return drive;
    }

    private Path config(String text) throws IOException {
        Path conf = dir.resolve("blkdebug.conf");
        Files.writeString(conf, text);
        return conf;
    }

    private NbdClient serve(Drive d) throws Exception {
        server = new NbdServer(List.of(new NbdExport("", "faulty disk", d, false, true)), 1, true,
                MemoryBudget.DEFAULT_BYTES);
        socket = dir.resolve("nbd.sock");
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

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.stop();
            server.awaitStopped();
        }
        if (drive != null) {
            try {
                drive.close();
            } catch (BlockException expected) {
                // the close flushes, and after a failed fdatasync every flush fails
            }
        }
    }

    private static byte[] filled(int n, int v) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) v);
        return b;
    }

    private static int errnoOf(ThrowingRunnable r) {
        try {
            r.run();
        } catch (BlockException e) {
            return e.errno().number();
        }
        return 0;
    }

    @FunctionalInterface
    private interface ThrowingRunnable {
        void run() throws BlockException;
    }

    /** {@code qemu-img check} of the image after the drive is closed: no corruption (leaks allowed). */
    private void assertConsistent() throws Exception {
        stop();
        server = null;
        drive = null;
        Peers.Result r = Peers.run(60, List.of(Peers.require("qemu-img"), "check", "-f", "qcow2",
                dir.resolve("disk.qcow2").toString()));
        assertThat(r.exit()).as("qemu-img check: %s", r.out()).isIn(0, 3);
    }

    @Test
    void afterAFailedFdatasyncUnderQcow2EveryFlushFails() throws Exception {
        Drive d = open("file=IMG,format=qcow2,cache=writeback");
        d.write(0, ByteBuffer.wrap(filled(8192, 1)), WriteFlags.NONE);
        d.flush();
        d.write(MIB, ByteBuffer.wrap(filled(4096, 2)), WriteFlags.NONE);
        faulty.failingDatasyncs.set(1);
        assertThat(errnoOf(d::flush)).isEqualTo(Errno.EIO.number());
        assertThat(faulty.failingDatasyncs).as("the fault was used").hasValue(0);
        assertThat(errnoOf(d::flush)).as("fsyncgate: the next flush fails too").isEqualTo(Errno.EIO.number());
        d.write(MIB, ByteBuffer.wrap(filled(4096, 3)), WriteFlags.NONE);
        assertThat(errnoOf(d::flush)).as("and after more writes").isEqualTo(Errno.EIO.number());
        // A write that needs a new L2 table fails as well: the file is flushed before the L1 entry points at
        // the table, and that flush fails (as in QEMU, whose file-posix marks its page cache inconsistent).
        assertThat(errnoOf(() -> d.write(3 * MIB, ByteBuffer.wrap(filled(4096, 4)), WriteFlags.NONE)))
                .isEqualTo(Errno.EIO.number());
        assertThat(errnoOf(() -> d.write(MIB, ByteBuffer.wrap(filled(4096, 4)), WriteFlags.FUA)))
                .as("a FUA write needs a flush, which fails").isEqualTo(Errno.EIO.number());
        ByteBuffer back = ByteBuffer.allocate(8192);
        d.read(0, back);
        assertThat(back.array()).as("flushed before the fault").isEqualTo(filled(8192, 1));
        assertConsistent();
    }

    @Test
    void anNbdClientOfAQcow2DriveGetsTheFailedFlushAndEveryLaterOne() throws Exception {
        Drive d = open("file=IMG,format=qcow2,cache=writeback");
        try (NbdClient c = serve(d)) {
            assertThat(c.write(0, filled(4096, 7), 0)).isZero();
            assertThat(c.flush()).isZero();
            assertThat(c.write(MIB, filled(4096, 8), 0)).isZero();
            faulty.failingDatasyncs.set(1);
            assertThat(c.flush()).isEqualTo(Nbd.EIO);
            assertThat(c.write(MIB + 4096, filled(4096, 9), 0)).isZero();
            assertThat(c.flush()).as("fsyncgate over NBD").isEqualTo(Nbd.EIO);
            assertThat(c.write(MIB, filled(512, 9), Nbd.CMD_FLAG_FUA)).isEqualTo(Nbd.EIO);
            assertThat(c.read(0, 4096)).as("data flushed before the fault").isEqualTo(filled(4096, 7));
        }
        assertConsistent();
    }

    @Test
    void eioOnFlushUnderQcow2FromBlkdebugReachesTheNbdClientEveryTime() throws Exception {
        Path conf = config("[inject-error]\nevent = \"flush_to_disk\"\niotype = \"flush\"\n");
        Drive d = open("driver=qcow2,file.driver=blkdebug,file.config=" + conf
                + ",file.image.filename=IMG,cache=writeback");
        try (NbdClient c = serve(d)) {
            assertThat(c.write(0, filled(4096, 1), 0)).isZero();
            assertThat(c.flush()).isEqualTo(Nbd.EIO);
            assertThat(c.write(MIB, filled(4096, 2), 0)).isZero();
            assertThat(c.flush()).as("every later flush").isEqualTo(Nbd.EIO);
            assertThat(c.read(0, 4096)).isEqualTo(filled(4096, 1));
            assertThat(c.read(MIB, 4096)).isEqualTo(filled(4096, 2));
        }
        assertConsistent();
    }

    @Test
    void enospcOnAQcow2DataWriteFailsThatRequestAndEarlierWritesStay() throws Exception {
        Path conf = config("[inject-error]\nevent = \"write_aio\"\nerrno = \"28\"\nonce = \"on\"\n");
        Drive d = open("driver=qcow2,file.driver=blkdebug,file.config=" + conf
                + ",file.image.filename=IMG,cache=writethrough");
        try (NbdClient c = serve(d)) {
            assertThat(c.write(MIB, filled(4096, 6), 0)).isEqualTo(Nbd.ENOSPC);
            assertThat(c.write(0, filled(4096, 5), 0)).isZero();
            assertThat(c.read(0, 4096)).isEqualTo(filled(4096, 5));
            assertThat(c.read(MIB, 4096)).as("the failed write left nothing").isEqualTo(new byte[4096]);
        }
        assertConsistent();
    }
}
