package io.jblock.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jblock.block.WriteFlags;
import io.jblock.format.RawNode;
import io.jblock.protocol.FileTestSupport.Extent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** Block status of the file protocol, under raw, against the real {@code qemu-img map --output=json -f raw}. */
class FileBlockStatusInteropTest {
    @TempDir
    Path dir;

    private static List<Extent> qemuMap(Path p) throws Exception {
        FileTestSupport.Run r = FileTestSupport.run("qemu-img", "map", "--output=json", "-f", "raw", p.toString());
        assertThat(r.exit()).as(r.stderr()).isZero();
        List<Extent> out = new ArrayList<>();
        for (JsonNode e : new ObjectMapper().readTree(r.stdout())) {
            if (e.get("length").asLong() > 0) {
                FileTestSupport.add(out, new Extent(e.get("start").asLong(), e.get("length").asLong(),
                        e.get("zero").asBoolean(), e.get("data").asBoolean()));
            }
        }
        return out;
    }

    private static List<Extent> ourMap(Path p) throws IOException {
        try (RawNode raw = RawNode.over(FileTestSupport.open(p, false))) {
            return FileTestSupport.map(raw);
        }
    }

    private static void writeData(Path p, long offset, int length, byte value) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            byte[] b = new byte[length];
            java.util.Arrays.fill(b, value);
            f.seek(offset);
            f.write(b);
        }
    }

    private static void truncate(Path p, long size) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
    }

    @Test
    void aFileMadeByTruncateIsOneZeroExtentAsInQemu() throws Exception {
        Path p = dir.resolve("sparse.img");
        truncate(p, 8 << 20);
        assertThat(ourMap(p)).containsExactly(new Extent(0, 8 << 20, true, false));
        assertThat(ourMap(p)).isEqualTo(qemuMap(p));
    }

    @Test
    void dataBetweenHolesAndATrailingHoleMatchQemu() throws Exception {
        Path p = dir.resolve("mixed.img");
        truncate(p, 4 << 20);
        writeData(p, 1 << 20, 65536, (byte) 1);
        writeData(p, 3 << 20, 100, (byte) 2);
        truncate(p, 6 << 20);
        List<Extent> ours = ourMap(p);
        assertThat(ours).hasSizeGreaterThanOrEqualTo(5);
        assertThat(ours).isEqualTo(qemuMap(p));
    }

    @Test
    void holesPunchedByDiscardAndUnmappingZeroesMatchQemu() throws Exception {
        Path p = dir.resolve("punched.img");
        Files.write(p, new byte[2 << 20]);
        try (FileNode node = FileTestSupport.open(p, false)) {
            node.write(0, ByteBuffer.wrap(new byte[] {9}), 0);
            node.discard(256 << 10, 256 << 10);
            node.writeZeroes(1 << 20, 128 << 10, WriteFlags.MAY_UNMAP);
            node.writeZeroes((1 << 20) + (512 << 10), 64 << 10, WriteFlags.NONE);
        }
        List<Extent> ours = ourMap(p);
        assertThat(ours).contains(new Extent(256 << 10, 256 << 10, true, false));
        assertThat(ours).isEqualTo(qemuMap(p));
    }

    @Test
    void randomLayoutsOfDataAndHolesMatchQemu() throws Exception {
        long seed = System.nanoTime();
        System.out.println("randomLayoutsOfDataAndHolesMatchQemu seed=" + seed);
        Random rnd = new Random(seed);
        for (int round = 0; round < 8; round++) {
            Path p = dir.resolve("random" + round + ".img");
            long size = (1 + rnd.nextInt(8192)) * 512L;
            truncate(p, size);
            try (FileNode node = FileTestSupport.open(p, false)) {
                for (int op = 0; op < 12; op++) {
                    long off = (long) (rnd.nextDouble() * size);
                    long len = Math.min(size - off, 1 + rnd.nextInt(256 << 10));
                    if (len <= 0) {
                        continue;
                    }
                    switch (rnd.nextInt(3)) {
                        case 0 -> node.write(off, ByteBuffer.wrap(new byte[(int) len]).put(0, (byte) 1), 0);
                        case 1 -> node.discard(off, len);
                        default -> node.writeZeroes(off, len, WriteFlags.MAY_UNMAP);
                    }
                }
            }
            assertThat(ourMap(p)).as("seed %d round %d size %d", seed, round, size).isEqualTo(qemuMap(p));
        }
    }
}
