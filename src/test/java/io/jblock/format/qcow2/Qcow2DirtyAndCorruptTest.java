package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The dirty bit (lazy refcounts), the corrupt bit, and the overlap check
 * that sets it, as QEMU 7.2 handles them.
 */
class Qcow2DirtyAndCorruptTest {
    @TempDir
    Path dir;

    @Test
    void lazyRefcountsMarkTheImageDirtyWhileWritingAndCleanOnClose() throws Exception {
        Path img = dir.resolve("lazy.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", img.toString(), "4M");
        assertThat(incompatible(img) & Qcow2Header.INCOMPAT_DIRTY).as("fresh image").isZero();
        try (Drive d = rw(img)) {
            d.write(12345, ByteBuffer.wrap(new byte[70000]).put(0, (byte) 7), WriteFlags.NONE);
            d.flush();
            assertThat(incompatible(img) & Qcow2Header.INCOMPAT_DIRTY).as("dirty while open and written").isNotZero();
        }
        assertThat(incompatible(img) & Qcow2Header.INCOMPAT_DIRTY).as("clean after close").isZero();
        Peers.Result check = Peers.run(60, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.out()).contains("No errors were found on the image.").doesNotContain("leaked");
        assertThat(qemuIo(img, List.of("read -P 7 12345 1")).out()).contains("read 1/1");
    }

    @Test
    void aDirtyImageOpensReadOnlyAsItIsAndReadWriteRepaired() throws Exception {
        Path img = dir.resolve("dirty.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", img.toString(), "4M");
        // qemu-io writes with lazy refcounts and is killed: the image is dirty, its refcounts never stored.
        Peers.run(60, List.of(Peers.require("qemu-io"), "-f", "qcow2", "-c", "write -P 9 64k 128k", "-c",
                "sigraise 9", img.toString()));
        assertThat(incompatible(img) & Qcow2Header.INCOMPAT_DIRTY).as("left dirty by the crash").isNotZero();
        assertThat(Peers.run(60, List.of(Peers.require("qemu-img"), "check", img.toString())).exit())
                .as("the crashed image has refcount errors").isNotZero();
        long before = java.nio.file.Files.size(img);
        try (Drive d = QemuImages.open(img)) {
            assertThat(d.length()).isEqualTo(4L << 20);
        }
        assertThat(incompatible(img) & Qcow2Header.INCOMPAT_DIRTY).as("a read-only open repairs nothing").isNotZero();
        assertThat(java.nio.file.Files.size(img)).isEqualTo(before);
        try (Drive d = rw(img)) {
            assertThat(incompatible(img) & Qcow2Header.INCOMPAT_DIRTY).as("repaired on open").isZero();
            ByteBuffer b = ByteBuffer.allocate(128 << 10);
            d.read(64 << 10, b);
            assertThat(b.get(0)).isEqualTo((byte) 9);
            assertThat(b.get((128 << 10) - 1)).isEqualTo((byte) 9);
        }
        Peers.Result check = Peers.run(60, List.of(Peers.require("qemu-img"), "check", img.toString()));
        assertThat(check.exit()).as(check.out()).isZero();
        assertThat(check.out()).contains("No errors were found on the image.");
    }

    @Test
    void aCorruptImageOpensReadOnlyOnlyWithQemusMessage() throws Exception {
        Path img = dir.resolve("corrupt.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "4M");
        setIncompatible(img, Qcow2Header.INCOMPAT_CORRUPT);
        assertThatThrownBy(() -> rw(img)).isInstanceOfSatisfying(BlockException.class,
                        e -> assertThat(e.errno()).isEqualTo(Errno.EACCES))
                .hasMessage("qcow2: Image is corrupt; cannot be opened read/write");
        try (Drive d = QemuImages.open(img)) {
            assertThat(d.length()).isEqualTo(4L << 20);
        }
    }

    @Test
    void anAllocationOverlappingTheL1TableMarksTheImageCorruptAndFails() throws Exception {
        Path img = dir.resolve("overlap.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "4M");
        qemuIo(img, List.of("write -P 1 0 64k"));
        long l1;
        long refblock;
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(72);
            ch.read(h, 0);
            l1 = h.getLong(40);
            ByteBuffer t = ByteBuffer.allocate(8);
            ch.read(t, h.getLong(48));
            refblock = t.getLong(0);
            // The L1 table's cluster claims to be free: the next allocation would land on it.
            ch.write(ByteBuffer.allocate(2), refblock + (l1 / 65536) * 2);
        }
        try (Drive d = rw(img)) {
            assertThatThrownBy(() -> d.write(1 << 20, ByteBuffer.wrap(new byte[512]), WriteFlags.NONE))
                    .isInstanceOf(BlockException.Corrupt.class)
                    .hasMessageContaining("overlaps with active L1 table");
            assertThatThrownBy(() -> d.write(0, ByteBuffer.wrap(new byte[512]), WriteFlags.NONE))
                    .as("every later request fails").isInstanceOf(BlockException.class);
        }
        assertThat(incompatible(img) & Qcow2Header.INCOMPAT_CORRUPT).as("corrupt bit in the header").isNotZero();
        assertThat(qemuImg("info", img.toString()).out()).contains("corrupt: true");
    }

    private static Drive rw(Path img) throws BlockException {
        return DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"));
    }

    private static long incompatible(Path img) throws Exception {
        try (FileChannel ch = FileChannel.open(img)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, 72);
            return b.getLong(0);
        }
    }

    private static void setIncompatible(Path img, long bit) throws Exception {
        long v = incompatible(img) | bit;
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).putLong(0, v), 72);
        }
    }
}
