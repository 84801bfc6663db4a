package io.jblock.filter;

import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;
import io.jblock.nbd.Nbd;
import io.jblock.nbd.NbdClient;
import io.jblock.testing.FaultyEngine;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

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
    private FaultRig rig;
    private FaultyEngine faulty;

    private Drive open(String driveOptions) throws Exception {
        Path img = dir.resolve("disk.qcow2");
        if (!Files.exists(img)) {
            Peers.run(60, List.of(Peers.require("qemu-img"), "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k",
                    img.toString(), Long.toString(4L * MIB))).ok();
        }
        return rig.open(img, driveOptions);
    }

    @BeforeEach
    void makeRig() {
        rig = new FaultRig(dir);
        faulty = rig.faulty;
    }

    private Path config(String text) throws IOException {
        return rig.config(text);
    }

    private NbdClient serve(Drive d) throws Exception {
        return rig.serve(d);
    }

    @AfterEach
    void stop() throws Exception {
        rig.close();
    }

    private static byte[] filled(int n, int v) {
        return FaultRig.filled(n, v);
    }

    private static int errnoOf(FaultRig.ThrowingRunnable r) {
        return FaultRig.errnoOf(r);
    }

    /** {@code qemu-img check} of the image after the drive is closed: no corruption (leaks allowed). */
    private void assertConsistent() throws Exception {
        stop();
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
