package io.jblock.format.qcow2;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.block.NodeInfo;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static io.jblock.format.qcow2.QemuImages.assertReadsAsQemu;
import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static io.jblock.format.qcow2.QemuImages.randomWrites;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Images written by QEMU 7.2's own tools read back byte for byte as
 * {@code qemu-img convert -O raw} reads them, and describe themselves as
 * {@code qemu-img info} does.
 */
class Qcow2ReadInteropTest {
    private static final long SIZE = 8L << 20;

    @TempDir
    Path dir;

    /** qemu-img create options, and the largest single write the random fill makes. */
    static Stream<Arguments> createdImages() {
        return Stream.of(
                Arguments.of("compat=0.10", 512, 200_000L),
                Arguments.of("compat=1.1", 512, 200_000L),
                Arguments.of("cluster_size=512", 512, 20_000L),
                Arguments.of("cluster_size=2M", 512, 3_000_000L),
                Arguments.of("refcount_bits=1", 4096, 200_000L),
                Arguments.of("refcount_bits=64", 4096, 200_000L),
                Arguments.of("lazy_refcounts=on", 4096, 200_000L),
                Arguments.of("preallocation=metadata", 512, 200_000L),
                Arguments.of("compat=0.10,preallocation=metadata", 512, 200_000L),
                Arguments.of("extended_l2=on,cluster_size=128k", 4096, 20_000L),
                Arguments.of("extended_l2=on,cluster_size=2M", 65536, 300_000L),
                Arguments.of("extended_l2=on,cluster_size=64k", 2048, 10_000L),
                Arguments.of("compression_type=zstd", 512, 200_000L));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("createdImages")
    void imageFilledByQemuIoReadsAsQemuReadsIt(String options, int align, long maxWrite) throws Exception {
        Path img = dir.resolve("img.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, img.toString(), Long.toString(SIZE));
        long seed = new Random().nextLong();
        qemuIo(img, randomWrites(seed, SIZE, align, maxWrite, 60, !options.contains("compat=0.10")));
        assertReadsAsQemu(img, seed);
        assertInfoAsQemu(img);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("compressionTypes")
    void compressedImageFromQemuImgConvertReadsAsQemuReadsIt(String options) throws Exception {
        Path src = dir.resolve("src.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", src.toString(), Long.toString(SIZE));
        long seed = new Random().nextLong();
        List<String> writes = new ArrayList<>(randomWrites(seed, SIZE, 512, 300_000, 40, true));
        // Random bytes do not compress: QEMU stores those clusters uncompressed, so both kinds appear.
        Path noise = dir.resolve("noise.raw");
        byte[] random = new byte[1 << 20];
        new Random(seed).nextBytes(random);
        java.nio.file.Files.write(noise, random);
        writes.add("write -s " + noise + " " + (SIZE / 2) + " " + random.length);
        qemuIo(src, writes);
        Path img = dir.resolve("c.qcow2");
        qemuImg("convert", "-c", "-O", "qcow2", "-o", options, src.toString(), img.toString());
        assertReadsAsQemu(img, seed);
        assertInfoAsQemu(img);
    }

    static Stream<Arguments> compressionTypes() {
        return Stream.of(Arguments.of("compression_type=zlib"), Arguments.of("compression_type=zstd"),
                Arguments.of("compression_type=zlib,cluster_size=512"),
                Arguments.of("compression_type=zstd,cluster_size=512"),
                Arguments.of("compression_type=zstd,cluster_size=2M"),
                Arguments.of("compression_type=zlib,cluster_size=2M"),
                Arguments.of("compat=0.10"),
                Arguments.of("compression_type=zlib,extended_l2=on,cluster_size=128k"),
                Arguments.of("compression_type=zstd,extended_l2=on,cluster_size=2M"));
    }

    @Test
    void internalSnapshotsLeaveTheActiveLayerAsQemuReadsIt() throws Exception {
        Path img = dir.resolve("snap.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), Long.toString(SIZE));
        long seed = new Random().nextLong();
        qemuIo(img, randomWrites(seed, SIZE, 512, 100_000, 20, true));
        qemuImg("snapshot", "-c", "first", img.toString());
        qemuIo(img, randomWrites(seed + 1, SIZE, 512, 100_000, 20, true));
        qemuImg("snapshot", "-c", "second", img.toString());
        qemuIo(img, randomWrites(seed + 2, SIZE, 512, 100_000, 20, true));
        assertReadsAsQemu(img, seed);
        try (Drive d = QemuImages.open(img)) {
            List<Qcow2Snapshots.Snapshot> snapshots = ((Qcow2Node) d.root()).snapshots();
            assertThat(snapshots).extracting(Qcow2Snapshots.Snapshot::id, Qcow2Snapshots.Snapshot::name)
                    .containsExactly(org.assertj.core.groups.Tuple.tuple("1", "first"),
                            org.assertj.core.groups.Tuple.tuple("2", "second"));
            assertThat(snapshots).allSatisfy(s -> assertThat(s.diskSize()).isEqualTo(SIZE));
        }
    }

    @Test
    void dirtyAndCorruptMarkedImagesStillReadAsQemuReadsThemReadOnly() throws Exception {
        Path img = dir.resolve("dirty.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", img.toString(), Long.toString(SIZE));
        long seed = new Random().nextLong();
        qemuIo(img, randomWrites(seed, SIZE, 512, 100_000, 20, true));
        // What a QEMU killed with lazy refcounts leaves, then what it marks on finding corruption.
        for (long bits : new long[] {Qcow2Header.INCOMPAT_DIRTY, Qcow2Header.INCOMPAT_DIRTY | Qcow2Header.INCOMPAT_CORRUPT}) {
            try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
                f.seek(72);
                f.writeLong(bits);
            }
            assertReadsAsQemu(img, seed);
            try (Drive d = QemuImages.open(img)) {
                assertThat(d.root().info().formatSpecific().get("corrupt"))
                        .isEqualTo((bits & Qcow2Header.INCOMPAT_CORRUPT) != 0);
            }
        }
    }

    @Test
    void imageWithABitmapReadsAsQemuReadsIt() throws Exception {
        Path img = dir.resolve("bitmap.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), Long.toString(SIZE));
        qemuImg("bitmap", "--add", img.toString(), "dirty0");
        long seed = new Random().nextLong();
        qemuIo(img, randomWrites(seed, SIZE, 512, 100_000, 30, true));
        assertReadsAsQemu(img, seed);
        assertInfoAsQemu(img);
    }

    @Test
    void externalDataFileIsReadThroughTheDataFileChild() throws Exception {
        Path img = dir.resolve("ext.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "data_file=" + dir.resolve("ext.data"), img.toString(),
                Long.toString(SIZE));
        long seed = new Random().nextLong();
        qemuIo(img, randomWrites(seed, SIZE, 512, 200_000, 40, true));
        assertReadsAsQemu(img, seed);
        assertInfoAsQemu(img);
        try (Drive d = QemuImages.open(img)) {
            assertThat(d.root().child("data-file")).as("the data-file child").isNotNull();
        }
    }

    @Test
    void relativeDataFileNameIsOpenedFromTheWorkingDirectoryAsQemuDoes() throws Exception {
        Path img = dir.resolve("rel.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "data_file=" + dir.resolve("rel-in-tmp.data"), img.toString(),
                Long.toString(SIZE));
        qemuImg("amend", "-o", "data_file=rel-in-tmp.data", img.toString());
        Peers.Result qemu = Peers.run(60, List.of(Peers.require("qemu-io"), "-r", "-c", "read 0 512", img.toString()));
        assertThat(qemu.err()).contains("Could not open 'rel-in-tmp.data'");
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.class)
                .hasMessageContaining("rel-in-tmp.data");
    }

    @Test
    void threeDeepBackingChainReadsAsQemuReadsIt() throws Exception {
        Path base = dir.resolve("base.qcow2");
        Path mid = dir.resolve("mid.qcow2");
        Path top = dir.resolve("top.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", base.toString(), Long.toString(SIZE));
        qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid.toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top.toString());
        long seed = new Random().nextLong();
        qemuIo(base, randomWrites(seed, SIZE, 512, 300_000, 30, true));
        qemuIo(mid, randomWrites(seed + 1, SIZE, 512, 300_000, 30, true));
        qemuIo(top, randomWrites(seed + 2, SIZE, 512, 300_000, 30, true));
        assertReadsAsQemu(top, seed);
        try (Drive d = QemuImages.open(top)) {
            assertThat(d.root().child("backing").child("backing")).as("base under mid under top").isNotNull();
            assertThat(d.root().child("backing").isReadOnly()).isTrue();
        }
    }

    @Test
    void manyVirtualThreadsReadOneImageAtOnce() throws Exception {
        Path img = dir.resolve("busy.qcow2");
        // 512-byte clusters: 8 MiB of them needs far more L2 slices than the cache holds, so readers evict each other.
        qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", img.toString(), Long.toString(SIZE));
        long seed = new Random().nextLong();
        qemuIo(img, randomWrites(seed, SIZE, 512, 500_000, 40, true));
        byte[] expected = QemuImages.qemuRaw(img);
        try (Drive d = QemuImages.open(img); var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> readers = new ArrayList<>();
            for (int t = 0; t < 64; t++) {
                long s = seed + t;
                readers.add(pool.submit(() -> {
                    Random r = new Random(s);
                    for (int i = 0; i < 50; i++) {
                        int off = r.nextInt(expected.length);
                        int len = 1 + r.nextInt(Math.min(expected.length - off, 100_000));
                        ByteBuffer b = ByteBuffer.allocate(len);
                        d.read(off, b);
                        QemuImages.assertSameBytes(b.array(),
                                java.util.Arrays.copyOfRange(expected, off, off + len),
                                "concurrent read at " + off + " (seed " + s + ")");
                    }
                    return null;
                }));
            }
            for (Future<?> f : readers) {
                f.get();
            }
        }
    }

    @Test
    void probedQcow2IsOpenedAsQcow2() throws Exception {
        Path img = dir.resolve("probe.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), "1M");
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive("file=" + img + ",read-only=on"))) {
            assertThat(d.root().driverName()).isEqualTo("qcow2");
            assertThat(d.length()).isEqualTo(1 << 20);
        }
    }

    /** jblock's format-specific map equals qemu-img info's "format-specific" data, key for key, in order. */
    static void assertInfoAsQemu(Path img) throws Exception {
        JsonNode qemu = new ObjectMapper().readTree(
                qemuImg("info", "--output=json", "-U", img.toString()).out());
        try (Drive d = QemuImages.open(img)) {
            NodeInfo info = d.root().info();
            assertThat(info.clusterSize()).isEqualTo(qemu.get("cluster-size").asLong());
            JsonNode data = qemu.get("format-specific").get("data");
            List<String> keys = new ArrayList<>();
            data.fieldNames().forEachRemaining(keys::add);
            assertThat(List.copyOf(info.formatSpecific().keySet())).as("format-specific keys").isEqualTo(keys);
            for (Map.Entry<String, Object> e : info.formatSpecific().entrySet()) {
                if (data.get(e.getKey()).isContainerNode()) {
                    assertThat(new ObjectMapper().valueToTree(e.getValue()).toString()).as(e.getKey())
                            .isEqualTo(data.get(e.getKey()).toString());
                    continue;
                }
                assertThat(String.valueOf(e.getValue())).as(e.getKey()).isEqualTo(data.get(e.getKey()).asText());
            }
        }
    }
}
