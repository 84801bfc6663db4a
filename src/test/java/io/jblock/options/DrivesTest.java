package io.jblock.options;

import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.Drive;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The library facade: a -drive string or a builder gives a working drive. */
class DrivesTest {
    @TempDir
    Path dir;

    @Test
    void aDriveStringOpensTheImageWithItsCacheMode() throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[65536]);
        try (Drive d = Drives.open("file=" + img + ",format=raw,cache=unsafe")) {
            assertThat(d.cacheOptions()).isEqualTo(CacheMode.UNSAFE.options());
            d.write(512, ByteBuffer.wrap(new byte[]{7}), 0);
            d.flush();
            assertThat(d.stats().diskFlushes()).isZero();
        }
        assertThat(Files.readAllBytes(img)[512]).isEqualTo((byte) 7);
    }

    @Test
    void theBuilderSetsFormatCacheAndReadOnly() throws Exception {
        Path img = dir.resolve("a,b:c.img"); // neither the comma nor the colon is special for a Path
        Files.write(img, new byte[4096]);
        try (Drive d = Drives.builder(img).format("raw").cache(CacheMode.UNSAFE).readOnly(true).open()) {
            assertThat(d.isReadOnly()).isTrue();
            assertThat(d.root().driverName()).isEqualTo("raw");
            assertThat(d.root().child("file").isReadOnly()).isTrue();
            assertThat(d.cacheOptions()).isEqualTo(new CacheOptions(true, false, true));
            assertThatThrownBy(() -> d.write(0, ByteBuffer.allocate(1), 0)).hasMessage("Block node is read-only");
        }
    }

    @Test
    void theBuilderProbesWhenNoFormatIsGivenAndReportsQemusWarning() throws Exception {
        Path img = dir.resolve("p.img");
        Files.write(img, new byte[4096]);
        List<String> warnings = new ArrayList<>();
        try (Drive d = Drives.builder(img).warnings(warnings::add).open()) {
            assertThat(d.root().driverName()).isEqualTo("raw");
        }
        assertThat(warnings).hasSize(1);
    }

    @Test
    void theBuilderOpensASnapshotThatLeavesTheImageAlone() throws Exception {
        Path img = dir.resolve("s.img");
        Files.write(img, new byte[8192]);
        try (Drive d = Drives.builder(img).format("raw").snapshot(true).open()) {
            d.write(0, ByteBuffer.wrap(new byte[]{1, 2, 3}), 0);
            ByteBuffer back = ByteBuffer.allocate(3);
            d.read(0, back);
            assertThat(back.array()).containsExactly(1, 2, 3);
        }
        assertThat(Files.readAllBytes(img)).containsOnly(0);
    }

    @Test
    void badOptionsFailWithQemusText() {
        assertThatThrownBy(() -> Drives.open("file=x.img,cache=sometimes")).hasMessage("invalid cache option");
        assertThatThrownBy(() -> Drives.builder(dir.resolve("missing.img")).format("raw").open())
                .hasMessage("Could not open '" + dir.resolve("missing.img") + "': No such file or directory");
        assertThatThrownBy(() -> Drives.builder(dir.resolve("x")).format("vmdk").open())
                .hasMessage("Unknown driver 'vmdk'");
    }
}
