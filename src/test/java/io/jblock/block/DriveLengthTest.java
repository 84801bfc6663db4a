package io.jblock.block;

import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The drive checks requests against a length it keeps, and the file node keeps the file's length as QEMU
 * keeps total_sectors: a regular file grown by another process is not seen (QEMU refreshes the length only
 * for drivers of variable length, host devices and CD-ROMs), a truncate through the drive is seen at once.
 */
class DriveLengthTest {
    @TempDir
    Path dir;

    @Test
    void aFileGrownBehindItsBackIsNotSeenButATruncateThroughTheDriveIs() throws Exception {
        Path img = dir.resolve("d.img");
        Files.write(img, new byte[64 << 10]);
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=raw"))) {
            d.write(0, ByteBuffer.allocate(4096), 0);
            assertThatThrownBy(() -> d.write(64 << 10, ByteBuffer.allocate(512), 0))
                    .isInstanceOf(BlockException.BadRequest.class).hasMessageContaining("request past the end");
            try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                f.setLength(128 << 10);
            }
            assertThatThrownBy(() -> d.write(64 << 10, ByteBuffer.wrap(new byte[] {7}), 0))
                    .isInstanceOf(BlockException.BadRequest.class).hasMessageContaining("drive length " + (64 << 10));
            assertThat(Files.readAllBytes(img)[64 << 10]).isZero();

            d.truncate(8 << 10, false, Prealloc.OFF);
            assertThatThrownBy(() -> d.read(8 << 10, ByteBuffer.allocate(512)))
                    .isInstanceOf(BlockException.BadRequest.class)
                    .hasMessageContaining("drive length " + (8 << 10));
            d.read(0, ByteBuffer.allocate(8 << 10));
        }
    }
}
