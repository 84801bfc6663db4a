package io.jblock.filter;

import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;
import io.jblock.nbd.Nbd;
import io.jblock.nbd.NbdClient;
import io.jblock.testing.FaultyEngine;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Faults on raw images, through the drive and through an NBD client: a
 * failed fdatasync (FaultyEngine) and the fsyncgate rule, and ENOSPC / EIO on
 * write (blkdebug). Every failure reaches the client with its errno, and what
 * was written before stays intact.
 */
class FaultsTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private FaultRig rig;
    private FaultyEngine faulty;

    private Drive open(String driveOptions) throws Exception {
        Path img = dir.resolve("disk.img");
        if (!Files.exists(img)) {
            Files.write(img, new byte[4 * MIB]);
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

    @Test
    void afterAFailedFdatasyncEveryFlushOfTheDriveFails() throws Exception {
        Drive d = open("file=IMG,format=raw,cache=writeback");
        d.write(0, ByteBuffer.wrap(filled(4096, 1)), WriteFlags.NONE);
        faulty.failingDatasyncs.set(1);
        assertThat(errnoOf(d::flush)).isEqualTo(Errno.EIO.number());
        assertThat(faulty.failingDatasyncs).as("the fault was used").hasValue(0);
        d.write(4096, ByteBuffer.wrap(filled(4096, 2)), WriteFlags.NONE);
        assertThat(errnoOf(d::flush)).as("fsyncgate: the next flush fails too").isEqualTo(Errno.EIO.number());
        assertThat(errnoOf(d::flush)).as("and the one after").isEqualTo(Errno.EIO.number());
        assertThat(errnoOf(() -> d.write(8192, ByteBuffer.wrap(filled(512, 3)), WriteFlags.FUA)))
                .as("a FUA write needs a flush, which fails").isEqualTo(Errno.EIO.number());
        ByteBuffer back = ByteBuffer.allocate(8192);
        d.read(0, back);
        assertThat(Arrays.copyOf(back.array(), 4096)).isEqualTo(filled(4096, 1));
    }

    @Test
    void anNbdClientGetsTheFailedFlushAndEveryLaterOne() throws Exception {
        Drive d = open("file=IMG,format=raw,cache=writeback");
        try (NbdClient c = serve(d)) {
            assertThat(c.write(0, filled(4096, 7), 0)).isZero();
            assertThat(c.flush()).isZero();
            assertThat(c.write(4096, filled(4096, 8), 0)).isZero();
            faulty.failingDatasyncs.set(1);
            assertThat(c.flush()).isEqualTo(Nbd.EIO);
            assertThat(c.write(8192, filled(4096, 9), 0)).isZero();
            assertThat(c.flush()).as("fsyncgate over NBD").isEqualTo(Nbd.EIO);
            assertThat(c.write(8192, filled(512, 9), Nbd.CMD_FLAG_FUA)).isEqualTo(Nbd.EIO);
            assertThat(c.read(0, 4096)).as("data flushed before the fault").isEqualTo(filled(4096, 7));
        }
    }

    @Test
    void enospcOnWriteFailsThatRequestThroughNbdAndEarlierWritesStay() throws Exception {
        Path conf = config("[inject-error]\nevent = \"write_aio\"\niotype = \"write\"\nerrno = \"28\"\n"
                + "sector = \"2048\"\n");
        Drive d = open("file=blkdebug:" + conf + ":IMG,format=raw,cache=writeback");
        try (NbdClient c = serve(d)) {
            assertThat(c.write(0, filled(4096, 5), 0)).isZero();
            assertThat(c.write(MIB, filled(4096, 6), 0)).as("sector 2048 is at 1 MiB").isEqualTo(Nbd.ENOSPC);
            assertThat(c.write(MIB, filled(4096, 6), Nbd.CMD_FLAG_FUA)).isEqualTo(Nbd.ENOSPC);
            assertThat(c.write(8192, filled(4096, 4), 0)).as("elsewhere writes go on").isZero();
            assertThat(c.flush()).isZero();
            assertThat(c.read(0, 4096)).isEqualTo(filled(4096, 5));
            assertThat(c.read(MIB, 4096)).as("the failed write left nothing").isEqualTo(new byte[4096]);
        }
    }

    @Test
    void eioOnWriteFailsThroughTheDriveWithItsErrnoOnce() throws Exception {
        Path conf = config("[inject-error]\nevent = \"write_aio\"\niotype = \"write\"\nonce = \"on\"\n");
        Drive d = open("file=blkdebug:" + conf + ":IMG,format=raw,cache=writethrough");
        assertThat(errnoOf(() -> d.write(0, ByteBuffer.wrap(filled(512, 1)), WriteFlags.NONE)))
                .isEqualTo(Errno.EIO.number());
        d.write(0, ByteBuffer.wrap(filled(512, 2)), WriteFlags.NONE);
        ByteBuffer b = ByteBuffer.allocate(512);
        d.read(0, b);
        assertThat(b.array()).isEqualTo(filled(512, 2));
    }

    @Test
    void eioOnFlushFromBlkdebugReachesTheNbdClient() throws Exception {
        Path conf = config("[inject-error]\nevent = \"flush_to_disk\"\niotype = \"flush\"\n");
        Drive d = open("file=blkdebug:" + conf + ":IMG,format=raw,cache=writeback");
        try (NbdClient c = serve(d)) {
            assertThat(c.write(0, filled(512, 1), 0)).isZero();
            assertThat(c.flush()).isEqualTo(Nbd.EIO);
            assertThat(c.read(0, 512)).isEqualTo(filled(512, 1));
        }
    }
}
