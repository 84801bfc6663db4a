package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.Prealloc;
import io.jblock.options.GraphOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** QEMU's host_device protocol: the file protocol's options on character and block devices, and its create. */
class HostDeviceDriverTest {
    @TempDir
    Path dir;

    private static BlockNode open(String driver, String filename) throws BlockException {
        return GraphOpener.standard().open(null, NodeOptions.of("driver", driver, "filename", filename),
                NodeSettings.defaults().withReadOnly(true));
    }

    @Test
    void aCharacterDeviceOpensAsAnEmptyImageWithNothingAllocated() throws Exception {
        try (BlockNode node = open("host_device", "/dev/zero")) {
            assertThat(node.length()).isZero();
            assertThat(node.allocatedSize()).isZero();
        }
    }

    @Test
    void eachProtocolRefusesWhatTheOtherTakesWithQemusMessage() throws Exception {
        Path f = dir.resolve("plain.img");
        Files.write(f, new byte[512]);
        BlockException notDevice = catchThrowableOfType(BlockException.class,
                () -> open("host_device", f.toString()).close());
        assertThat(notDevice).hasMessage("'host_device' driver requires '" + f
                + "' to be either a character or block device");
        assertThat(notDevice.errno()).isEqualTo(Errno.EINVAL);
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-img", "info", "--image-opts",
                "driver=raw,file.driver=host_device,file.filename=" + f);
        assertThat(qemu.stderr().strip()).endsWith(": " + notDevice.getMessage());
        BlockException notFile = catchThrowableOfType(BlockException.class, () -> open("file", "/dev/null").close());
        assertThat(notFile).hasMessage("'file' driver requires '/dev/null' to be a regular file");
    }

    @Test
    void creatingOnADeviceWritesNothingAndCannotGrowOrPreallocate() throws Exception {
        FileDriver hostDevice = FileDriver.hostDevice();
        hostDevice.create("/dev/null", 0, Prealloc.OFF);
        BlockException grow = catchThrowableOfType(BlockException.class,
                () -> hostDevice.create("/dev/null", 512, Prealloc.OFF));
        assertThat(grow).hasMessage("Cannot grow device files");
        BlockException falloc = catchThrowableOfType(BlockException.class,
                () -> hostDevice.create("/dev/null", 0, Prealloc.FALLOC));
        assertThat(falloc).hasMessage("Unsupported preallocation mode 'falloc'");
        assertThat(falloc.errno()).isEqualTo(Errno.ENOTSUP);
    }
}
