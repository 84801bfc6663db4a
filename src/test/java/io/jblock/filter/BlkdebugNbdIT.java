package io.jblock.filter;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Faults injected under {@code jblock nbd} reach a real NBD client (qemu-io
 * over nbd+unix): EIO on flush fails the client's NBD_CMD_FLUSH, ENOSPC on a
 * write fails that write, and the data written before stays readable.
 */
class BlkdebugNbdIT {
    @TempDir
    Path dir;

    private Peers.Result client(Path socket, String... commands) throws Exception {
        List<String> cmd = Peers.cmd(Peers.require("qemu-io"), "-f", "raw", "-t", "writeback");
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add("nbd+unix:///?socket=" + socket);
        return Peers.run(60, cmd);
    }

    private Path image() throws Exception {
        Path img = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        return img;
    }

    @Test
    void eioOnFlushReachesTheNbdClient() throws Exception {
        Path img = image();
        Path conf = dir.resolve("flush.conf");
        Files.writeString(conf, "[inject-error]\nevent = \"flush_to_disk\"\niotype = \"flush\"\n");
        Path sock = dir.resolve("nbd.sock");
        try (Peers.Server s = Peers.Server.start(Peers.cmd(Peers.jblock(), "nbd", "-t", "-f", "raw", "-k",
                sock.toString(), "blkdebug:" + conf + ":" + img), sock, 0)) {
            Peers.Result ok = client(sock, "write -P 3 0 4k");
            assertThat(ok.out()).contains("wrote 4096/4096 bytes at offset 0");
            // qemu-io prints nothing for a failed flush; its exit status says it.
            Peers.Result flush = client(sock, "flush");
            assertThat(flush.exit()).isEqualTo(1);
            Peers.Result again = client(sock, "flush");
            assertThat(again.exit()).as("the rule stays: every later flush fails").isEqualTo(1);
            Peers.Result read = client(sock, "read -P 3 0 4k");
            assertThat(read.exit()).isZero();
            assertThat(read.out()).doesNotContain("Pattern verification failed");
        }
    }

    @Test
    void enospcOnWriteFailsThatWriteOnlyAndEarlierDataStays() throws Exception {
        Path img = image();
        Path conf = dir.resolve("write.conf");
        Files.writeString(conf, "[inject-error]\nevent = \"write_aio\"\niotype = \"write\"\nerrno = \"28\"\n"
                + "sector = \"2048\"\n");
        Path sock = dir.resolve("nbd.sock");
        try (Peers.Server s = Peers.Server.start(Peers.cmd(Peers.jblock(), "nbd", "-t", "-f", "raw", "-k",
                sock.toString(), "blkdebug:" + conf + ":" + img), sock, 0)) {
            Peers.Result r = client(sock, "write -P 5 0 4k", "write -P 6 1M 4k", "read -P 5 0 4k",
                    "read -P 0 1M 4k");
            assertThat(r.out()).contains("wrote 4096/4096 bytes at offset 0")
                    .contains("write failed: No space left on device")
                    .contains("read 4096/4096 bytes at offset 0")
                    .contains("read 4096/4096 bytes at offset 1048576")
                    .doesNotContain("Pattern verification failed");
            assertThat(r.exit()).isEqualTo(1);
        }
    }

    @Test
    void eioOnFlushUnderAQcow2ExportReachesTheNbdClientEveryTime() throws Exception {
        Path img = dir.resolve("disk.qcow2");
        Peers.run(60, Peers.cmd(Peers.require("qemu-img"), "create", "-q", "-f", "qcow2", img.toString(), "4M"))
                .ok();
        Path conf = dir.resolve("flush.conf");
        Files.writeString(conf, "[inject-error]\nevent = \"flush_to_disk\"\niotype = \"flush\"\n");
        Path sock = dir.resolve("nbd.sock");
        try (Peers.Server s = Peers.Server.start(Peers.cmd(Peers.jblock(), "nbd", "-t", "--image-opts", "-k",
                sock.toString(), "driver=qcow2,file.driver=blkdebug,file.config=" + conf + ",file.image.filename="
                        + img), sock, 0)) {
            Peers.Result ok = client(sock, "write -P 3 0 64k");
            assertThat(ok.out()).contains("wrote 65536/65536 bytes at offset 0");
            Peers.Result flush = client(sock, "flush");
            assertThat(flush.exit()).as("qemu-io exits 1 on a failed flush").isEqualTo(1);
            Peers.Result again = client(sock, "write -P 4 1M 4k", "flush");
            assertThat(again.exit()).as("every later flush fails").isEqualTo(1);
            Peers.Result read = client(sock, "read -P 3 0 64k", "read -P 4 1M 4k");
            assertThat(read.exit()).isZero();
            assertThat(read.out()).doesNotContain("Pattern verification failed");
        }
        Peers.Result check = Peers.run(60, Peers.cmd(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as("qemu-img check: %s", check.out()).isIn(0, 3);
    }
}
