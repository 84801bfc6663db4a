package io.jblock.protocol;

import io.jblock.block.BlockStatus;
import io.jblock.block.Drive;
import io.jblock.block.Prealloc;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** The file node's cached data extent never outlives a hole made after it was learnt. */
class FileDataExtentCacheTest {
    @TempDir
    Path dir;

    private Drive dataFile(long size) throws Exception {
        Path img = dir.resolve("d.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.write(new byte[(int) size]); // all data, no holes
        }
        return DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",format=raw,discard=unmap"));
    }

    @Test
    void aHolePunchedByDiscardIsSeenAfterTheExtentWasCached() throws Exception {
        try (Drive d = dataFile(1 << 20)) {
            assertThat(d.blockStatus(0, 1 << 20).isData()).isTrue();
            assertThat(d.blockStatus(64 << 10, 4096).isData()).as("served from the cache").isTrue();
            d.discard(256 << 10, 256 << 10);
            BlockStatus s = d.blockStatus(256 << 10, 256 << 10);
            assertThat(s.isData()).isFalse();
            assertThat(s.isZero()).isTrue();
            assertThat(d.blockStatus(0, 1 << 20).length()).isEqualTo(256 << 10);
        }
    }

    @Test
    void aHoleMadeByWriteZeroesWithUnmapIsSeen() throws Exception {
        try (Drive d = dataFile(1 << 20)) {
            assertThat(d.blockStatus(0, 1 << 20).isData()).isTrue();
            d.writeZeroes(512 << 10, 128 << 10, WriteFlags.MAY_UNMAP);
            assertThat(d.blockStatus(512 << 10, 4096).isZero()).isTrue();
        }
    }

    @Test
    void shrinkingAndGrowingAgainShowsTheNewTailAsAHole() throws Exception {
        try (Drive d = dataFile(1 << 20)) {
            assertThat(d.blockStatus(0, 1 << 20).isData()).isTrue();
            d.truncate(256 << 10, false, Prealloc.OFF);
            d.truncate(1 << 20, false, Prealloc.OFF);
            assertThat(d.blockStatus(512 << 10, 4096).isZero()).isTrue();
            ByteBuffer b = ByteBuffer.allocate(4096);
            d.read(512 << 10, b);
            assertThat(b.array()).isEqualTo(new byte[4096]);
        }
    }
}
