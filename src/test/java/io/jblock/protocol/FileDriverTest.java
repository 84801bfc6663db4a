package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.engine.ThreadsEngine;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** Opening files: QEMU's error messages (checked against the real tools), read-only opens, engines. */
class FileDriverTest {
    @TempDir
    Path dir;

    private static BlockNode open(boolean readOnly, String... keyValues) throws BlockException {
        NodeSettings inherited = NodeSettings.defaults().withReadOnly(readOnly);
        return GraphOpener.standard().open(null, NodeOptions.of(keyValues), inherited);
    }

    private static BlockException openFailure(boolean readOnly, String... keyValues) {
        return catchThrowableOfType(BlockException.class, () -> open(readOnly, keyValues).close());
    }

    @Test
    void aMissingFileFailsWithQemusMessage() throws Exception {
        String missing = dir.resolve("missing.img").toString();
        BlockException e = openFailure(true, "driver", "file", "filename", missing);
        assertThat(e.errno()).isEqualTo(Errno.ENOENT);
        assertThat(e.getMessage()).isEqualTo("Could not open '" + missing + "': No such file or directory");
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-img", "info", missing);
        assertThat(qemu.stderr().strip()).isEqualTo("qemu-img: Could not open '" + missing + "': " + e.getMessage());
    }

    @Test
    void aDirectoryOpenedReadOnlyIsRefusedAsNotARegularFile() throws Exception {
        String d = dir.toString();
        BlockException e = openFailure(true, "driver", "file", "filename", d);
        assertThat(e.errno()).isEqualTo(Errno.EINVAL);
        assertThat(e.getMessage()).isEqualTo("'file' driver requires '" + d + "' to be a regular file");
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-img", "info", "-f", "raw", d);
        assertThat(qemu.stderr().strip()).isEqualTo("qemu-img: Could not open '" + d + "': " + e.getMessage());
    }

    @Test
    void aDirectoryOpenedForWritingFailsWithIsADirectory() throws Exception {
        String d = dir.toString();
        BlockException e = openFailure(false, "driver", "file", "filename", d);
        assertThat(e.errno()).isEqualTo(Errno.EISDIR);
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-io", "-f", "raw", "-c", "read 0 1", d);
        assertThat(qemu.stderr().strip()).isEqualTo("qemu-io: can't open device " + d + ": " + e.getMessage());
    }

    @Test
    void directIoWhereTheFileSystemRefusesItFailsWithQemusMessage() throws Exception {
        // A directory refuses O_DIRECT with EINVAL, as tmpfs does for files.
        String d = dir.toString();
        BlockException e = openFailure(true, "driver", "file", "filename", d, "cache.direct", "on");
        assertThat(e.errno()).isEqualTo(Errno.EINVAL);
        String opts = "driver=file,filename=" + d + ",cache.direct=on";
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-img", "info", "--image-opts", opts);
        assertThat(qemu.stderr().strip()).isEqualTo("qemu-img: Could not open '" + opts + "': " + e.getMessage());
    }

    @Test
    void aFileWithoutPermissionOpensOrFailsExactlyAsUnderQemu() throws Exception {
        // As root the permission bits do not stop an open, under QEMU or here; as anyone else both refuse.
        Path p = dir.resolve("noperm.img");
        Files.write(p, new byte[4096]);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("---------"));
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-io", "-f", "raw", "-c", "read 0 1", p.toString());
        BlockException e = openFailure(false, "driver", "file", "filename", p.toString());
        if (qemu.stderr().contains("can't open")) {
            assertThat(e).isNotNull();
            assertThat(e.errno()).isEqualTo(Errno.EACCES);
            assertThat(qemu.stderr().strip()).isEqualTo("qemu-io: can't open device " + p + ": " + e.getMessage());
        } else {
            assertThat(qemu.exit()).isZero();
            assertThat(e).isNull();
        }
    }

    @Test
    void aReadOnlyOpenReadsButRefusesEveryChange() throws Exception {
        Path p = dir.resolve("ro.img");
        Files.write(p, new byte[] {1, 2, 3, 4});
        try (BlockNode node = open(true, "driver", "file", "filename", p.toString())) {
            ByteBuffer b = ByteBuffer.allocate(4);
            node.read(0, b);
            assertThat(b.array()).containsExactly(1, 2, 3, 4);
            assertThat(node.capabilities().fastZero()).isFalse();
            assertThatThrownBy(() -> node.write(0, ByteBuffer.allocate(1), 0))
                    .isInstanceOfSatisfying(BlockException.class, x -> assertThat(x.errno()).isEqualTo(Errno.EPERM));
            assertThatThrownBy(() -> node.discard(0, 4)).isInstanceOf(BlockException.class);
        }
        assertThat(Files.readAllBytes(p)).containsExactly(1, 2, 3, 4);
    }

    @Test
    void cacheDirectOpensWithOdirectAndReportsTheProbedAlignment() throws Exception {
        Path p = dir.resolve("d.img");
        Files.write(p, new byte[65536]);
        try (BlockNode node = open(false, "driver", "file", "filename", p.toString(), "cache.direct", "on")) {
            assertThat(node.settings().direct()).isTrue();
            assertThat(node.capabilities().requestAlignment()).isGreaterThanOrEqualTo(512);
            node.write(3, ByteBuffer.wrap(new byte[] {9}), 0);
        }
        assertThat(Files.readAllBytes(p)[3]).isEqualTo((byte) 9);
    }

    @Test
    void aioNativeWithoutDirectFailsWithQemusMessage() throws Exception {
        Path p = dir.resolve("n.img");
        Files.write(p, new byte[4096]);
        BlockException e = openFailure(false, "driver", "file", "filename", p.toString(), "aio", "native");
        assertThat(e.errno()).isEqualTo(Errno.EINVAL);
        FileTestSupport.Run qemu = FileTestSupport.run("qemu-io", "--image-opts",
                "driver=file,filename=" + p + ",aio=native", "-c", "read 0 1");
        assertThat(qemu.stderr().strip()).isEqualTo("qemu-io: can't open: " + e.getMessage());
    }

    @Test
    void aioIoUringRunsOnTheIoUringEngineAndNeverOnThreads() throws Exception {
        Path p = dir.resolve("u.img");
        Files.write(p, new byte[4096]);
        try (BlockNode node = open(false, "driver", "file", "filename", p.toString(), "aio", "io_uring")) {
            node.write(5, ByteBuffer.wrap(new byte[] {7}), 0);
        }
        assertThat(Files.readAllBytes(p)[5]).isEqualTo((byte) 7);

        // Even an engine provider that hands out threads for every mode cannot make io_uring run on threads.
        GraphOpener lenient = new GraphOpener(DriverRegistry.standard(), mode -> ThreadsEngine.INSTANCE);
        assertThatThrownBy(() -> lenient.open(null, NodeOptions.of("driver", "file", "filename", p.toString(),
                "aio", "io_uring"), NodeSettings.defaults()).close())
                .isInstanceOf(BlockException.class).hasMessageContaining("never falls back");
    }

    @Test
    void badValuesOfTheFileOptionsAreRefusedWithQemusMessages() throws Exception {
        Path p = dir.resolve("o.img");
        Files.write(p, new byte[4096]);
        for (String bad : new String[] {"aio=foo", "locking=maybe", "aio-max-batch=x", "drop-cache=x"}) {
            String[] kv = bad.split("=");
            BlockException e = openFailure(false, "driver", "file", "filename", p.toString(), kv[0], kv[1]);
            assertThat(e).as(bad).isNotNull();
            String opts = "driver=file,filename=" + p + "," + bad;
            FileTestSupport.Run qemu = FileTestSupport.run("qemu-img", "info", "--image-opts", opts);
            assertThat(qemu.stderr().strip()).isEqualTo("qemu-img: Could not open '" + opts + "': " + e.getMessage());
        }
        try (BlockNode node = open(false, "driver", "file", "filename", p.toString(), "locking", "off",
                "aio-max-batch", "16", "drop-cache", "off", "aio", "threads")) {
            assertThat(node.length()).isEqualTo(4096);
        }
    }
}
