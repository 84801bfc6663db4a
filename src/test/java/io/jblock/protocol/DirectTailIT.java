package io.jblock.protocol;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Under O_DIRECT an unaligned write at the end of a file is padded to the
 * alignment; the file must still end where the image does, as QEMU's does.
 */
class DirectTailIT {
    @TempDir
    Path dir;

    private static final String QEMU_IMG = Peers.require("qemu-img");
    private static final String QEMU_IO = Peers.require("qemu-io");
    /** 6 MiB + 1536 B: a whole number of sectors, not of 4096-byte blocks. */
    private static final long SIZE = (6L << 20) + 1536;

    @Test
    void convertWithCacheNoneEndsTheTargetWhereQemuImgDoes() throws Exception {
        long seed = System.nanoTime();
        System.out.println("seed " + seed);
        byte[] data = new byte[(int) SIZE];
        new Random(seed).nextBytes(data);
        Path src = dir.resolve("src.raw");
        Files.write(src, data);
        Path theirs = dir.resolve("theirs.raw");
        Path ours = dir.resolve("ours.raw");
        Peers.run(QEMU_IMG, "convert", "-t", "none", "-f", "raw", "-O", "raw", src.toString(), theirs.toString()).ok();
        Peers.run(Peers.jblock(), "img", "convert", "-t", "none", "-f", "raw", "-O", "raw", src.toString(),
                ours.toString()).ok();
        assertThat(Files.size(ours)).isEqualTo(Files.size(theirs)).isEqualTo(SIZE);
        assertThat(Files.readAllBytes(ours)).isEqualTo(Files.readAllBytes(theirs));
    }

    @Test
    void aDirectWriteOfTheTailKeepsTheFileLength() throws Exception {
        // qemu-io refuses to write such an image with -t none (its size is not a multiple of the alignment);
        // jblock writes it, and the result must be what qemu-io writes through the page cache.
        for (String write : List.of("write -P 7 6291456 1536", "write -P 9 6292000 992", "write -P 5 4000 200")) {
            Path theirs = dir.resolve("theirs.img");
            Path ours = dir.resolve("ours.img");
            Files.deleteIfExists(theirs);
            Files.deleteIfExists(ours);
            Peers.run(QEMU_IMG, "create", "-q", "-f", "raw", theirs.toString(), String.valueOf(SIZE)).ok();
            Peers.run(QEMU_IMG, "create", "-q", "-f", "raw", ours.toString(), String.valueOf(SIZE)).ok();
            Peers.run(QEMU_IO, "-f", "raw", "-c", write, theirs.toString()).ok();
            Peers.Result r = Peers.run(Peers.jblock(), "io", "-t", "none", "-f", "raw", "-c", write, ours.toString());
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(Files.size(ours)).as(write).isEqualTo(SIZE);
            assertThat(Files.readAllBytes(ours)).as(write).isEqualTo(Files.readAllBytes(theirs));
        }
    }
}
