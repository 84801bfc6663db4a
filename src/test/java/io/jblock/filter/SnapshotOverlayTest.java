package io.jblock.filter;

import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** snapshot=on: writes land in a temporary overlay, the image is never written, and nothing survives close. */
class SnapshotOverlayTest {
    private static final int SIZE = 3 * SnapshotOverlay.CHUNK_SIZE + 12345; // a partial last chunk

    @TempDir
    Path dir;
    Path image;
    Path overlays;
    byte[] original;

    @BeforeEach
    void image() throws Exception {
        image = dir.resolve("disk.img");
        overlays = Files.createDirectory(dir.resolve("overlays"));
        original = new byte[SIZE];
        new Random(1).nextBytes(original);
        Files.write(image, original);
    }

    private Drive open(String extra) throws Exception {
        DriveConfig c = DriveConfig.parseDrive("file=" + image + ",format=raw,snapshot=on" + extra);
        return new DriveOpener(io.jblock.options.GraphOpener.standard()).snapshotDirectory(overlays).open(c);
    }

    private static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }

    /** The image's bytes as the drive shows them (its length is whole sectors: the tail past SIZE reads zero). */
    private static byte[] readAll(Drive d) throws Exception {
        assertThat(d.length()).isEqualTo((SIZE + 511) / 512 * 512);
        ByteBuffer b = ByteBuffer.allocate(SIZE);
        d.read(0, b);
        return b.array();
    }

    @Test
    void seededRandomWritesReadBackAndTheImageStaysByteIdentical() throws Exception {
        long seed = System.nanoTime();
        System.out.println("SnapshotOverlayTest seed: " + seed);
        Random rnd = new Random(seed);
        String before = sha256(image);
        byte[] model = original.clone();
        try (Drive d = open(",cache=writethrough")) {
            BlockNode img = ((SnapshotOverlay) d.root()).image();
            assertThat(img.isReadOnly()).as("image under the overlay is read-only").isTrue();
            for (int i = 0; i < 300; i++) {
                int off = rnd.nextInt(SIZE);
                int len = 1 + rnd.nextInt(Math.min(SIZE - off, 3 * SnapshotOverlay.CHUNK_SIZE / 2));
                if (rnd.nextInt(5) == 0) {
                    d.writeZeroes(off, len, rnd.nextBoolean() ? WriteFlags.MAY_UNMAP : 0);
                    java.util.Arrays.fill(model, off, off + len, (byte) 0);
                } else {
                    byte[] data = new byte[len];
                    rnd.nextBytes(data);
                    d.write(off, ByteBuffer.wrap(data), 0);
                    System.arraycopy(data, 0, model, off, len);
                }
                if (rnd.nextInt(20) == 0) {
                    d.flush();
                }
                if (rnd.nextInt(50) == 0) {
                    assertThat(readAll(d)).as("seed %d after %d writes", seed, i + 1).isEqualTo(model);
                }
            }
            d.flush();
            assertThat(readAll(d)).as("seed %d", seed).isEqualTo(model);
            assertThat(img.diskFlushCount()).as("fdatasync calls on the image").isZero();
            assertThat(d.root().diskFlushCount()).as("fdatasync calls anywhere under the overlay").isZero();
            assertThat(sha256(image)).as("image while the overlay is open").isEqualTo(before);
        }
        assertThat(sha256(image)).as("image after close, seed %d", seed).isEqualTo(before);
        try (Drive d = open("")) {
            assertThat(readAll(d)).as("a new snapshot starts from the untouched image").isEqualTo(original);
        }
        try (var files = Files.list(overlays)) {
            assertThat(files).as("temporary overlays left behind").isEmpty();
        }
    }

    @Test
    void aPartialWriteCopiesTheRestOfItsChunkFromTheImage() throws Exception {
        try (Drive d = open("")) {
            int off = SnapshotOverlay.CHUNK_SIZE + 1000;
            d.write(off, ByteBuffer.wrap(new byte[]{1, 2, 3}), 0);
            byte[] all = readAll(d);
            byte[] expected = original.clone();
            expected[off] = 1;
            expected[off + 1] = 2;
            expected[off + 2] = 3;
            assertThat(all).isEqualTo(expected);
        }
    }

    @Test
    void blockStatusSaysWhichChunksAreInTheOverlay() throws Exception {
        int chunk = SnapshotOverlay.CHUNK_SIZE;
        try (Drive d = open("")) {
            SnapshotOverlay o = (SnapshotOverlay) d.root();
            d.write(chunk + 5, ByteBuffer.wrap(new byte[10]).put(0, (byte) 9), 0);
            BlockStatus first = d.blockStatus(0, SIZE);
            assertThat(first.isAllocated()).isFalse();
            assertThat(first.depth()).isEqualTo(2);
            assertThat(first.length()).isEqualTo(chunk);
            BlockStatus second = d.blockStatus(chunk, SIZE - chunk);
            assertThat(second.isAllocated()).isTrue();
            assertThat(second.isData()).isTrue();
            assertThat(second.depth()).isEqualTo(1);
            assertThat(second.length()).isEqualTo(chunk);
            assertThat(d.blockStatus(2L * chunk, SIZE - 2L * chunk).isAllocated()).isFalse();
            assertThat(o.isAllocated(chunk)).isTrue();
            assertThat(o.isAllocated(0)).isFalse();
            assertThat(d.root().children()).extracting(c -> c.role()).containsExactly("file", "backing");
        }
    }

    @Test
    void concurrentWritesToOneUnallocatedChunkAllLand() throws Exception {
        long seed = System.nanoTime();
        System.out.println("SnapshotOverlayTest concurrency seed: " + seed);
        Random rnd = new Random(seed);
        byte[] model = original.clone();
        try (Drive d = open(""); var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int round = 0; round < 5; round++) {
                int chunkStart = rnd.nextInt(3) * SnapshotOverlay.CHUNK_SIZE;
                List<Future<?>> jobs = new ArrayList<>();
                for (int t = 0; t < 16; t++) {
                    int off = chunkStart + t * 4096 + rnd.nextInt(1000);
                    byte[] data = new byte[100];
                    rnd.nextBytes(data);
                    System.arraycopy(data, 0, model, off, data.length);
                    jobs.add(pool.submit(() -> {
                        d.write(off, ByteBuffer.wrap(data), 0);
                        return null;
                    }));
                }
                for (Future<?> f : jobs) {
                    f.get();
                }
            }
            assertThat(readAll(d)).as("seed %d", seed).isEqualTo(model);
        }
    }

    @Test
    void aReadOnlySnapshotDriveRefusesWritesAndTheImageIsNeverWritable() throws Exception {
        try (Drive d = open(",read-only=on")) {
            assertThat(d.isReadOnly()).isTrue();
            assertThatThrownBy(() -> d.write(0, ByteBuffer.allocate(1), 0)).hasMessage("Block node is read-only");
        }
        try (Drive d = open(",read-only=off,file.read-only=off")) {
            assertThat(((SnapshotOverlay) d.root()).image().isReadOnly()).isTrue();
        }
    }

    @Test
    void theOverlayRefusesAWritableImage() throws Exception {
        BlockNode writable = io.jblock.format.RawNode.over(io.jblock.protocol.MemoryNode.scratch(4096));
        assertThatThrownBy(() -> SnapshotOverlay.open(writable, io.jblock.block.NodeSettings.defaults(),
                io.jblock.engine.ThreadsEngine.INSTANCE, overlays))
                .hasMessage("the image under a snapshot overlay must be read-only");
        writable.close();
    }

    @Test
    void qemuIoInSnapshotModeLeavesTheImageUntouchedToo() throws Exception {
        String before = sha256(image);
        Process p = new ProcessBuilder("/usr/bin/qemu-io", "-f", "raw", "-s", "-c", "write -P 0x55 0 64k",
                "-c", "read -P 0x55 0 64k", image.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as(out).isZero();
        assertThat(out).doesNotContain("Pattern verification failed");
        assertThat(sha256(image)).isEqualTo(before);
        try (Drive d = open("")) {
            byte[] pattern = new byte[65536];
            java.util.Arrays.fill(pattern, (byte) 0x55);
            d.write(0, ByteBuffer.wrap(pattern), 0);
            ByteBuffer back = ByteBuffer.allocate(65536);
            d.read(0, back);
            assertThat(back.array()).isEqualTo(pattern);
        }
        assertThat(sha256(image)).isEqualTo(before);
    }
}
