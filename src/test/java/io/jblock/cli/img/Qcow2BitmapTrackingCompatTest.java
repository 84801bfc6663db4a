package io.jblock.cli.img;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static io.jblock.cli.img.BitmapOracle.assertCheckClean;
import static io.jblock.cli.img.BitmapOracle.dirtyMap;
import static io.jblock.cli.img.BitmapOracle.dirtyRanges;
import static io.jblock.cli.img.BitmapOracle.infoJson;
import static io.jblock.cli.img.BitmapOracle.jblockIo;
import static io.jblock.cli.img.BitmapOracle.qemuImg;
import static io.jblock.cli.img.BitmapOracle.qemuIo;
import static io.jblock.cli.img.ImgBitmapCompatTest.assertSameImages;
import static io.jblock.cli.img.QemuImgOracle.qemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Images with persistent bitmaps written by jblock: the same guest writes,
 * zero-writes and discards are done by qemu-io on one copy and by jblock's
 * io tool on another, and QEMU must then see the same bitmaps (not in use)
 * with the same dirty granules, the images check-clean; a seeded random
 * workload is held against a shadow of what each bitmap must record.
 */
class Qcow2BitmapTrackingCompatTest {
    private static final long SIZE = 10L << 20;
    private static Path dir;
    /** b1 (auto, 64k), b2 (auto, 4k), b3 (disabled), b4 (auto, 512), with data in places. */
    private static Path template;

    @BeforeAll
    static void makeImage() throws Exception {
        dir = CompatSupport.freshDir();
        template = dir.resolve("t.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", template.toString(), "10M");
        qemuImg("bitmap", "--add", template.toString(), "b1");
        qemuImg("bitmap", "--add", "-g", "4k", template.toString(), "b2");
        qemuImg("bitmap", "--add", "--disable", template.toString(), "b3");
        qemuImg("bitmap", "--add", "-g", "512", template.toString(), "b4");
        qemuIo(template, List.of("write -P 1 0 256k", "write -P 2 3M 1M"));
    }

    @AfterAll
    static void removeImage() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private static Path copy(Path from, String name) throws Exception {
        Path p = dir.resolve(name + "-" + System.nanoTime() + ".qcow2");
        Files.copy(from, p);
        return p;
    }

    static Stream<Arguments> scripts() {
        return Stream.of(
                Arguments.of(List.of("write -P 3 100k 3")),
                Arguments.of(List.of("write -P 3 0 512", "write 65535 2", "write 10485759 1")),
                Arguments.of(List.of("write -z 1M 200k", "write -z -u 5M 128k")),
                Arguments.of(List.of("discard 5M 64k", "discard 100k 1k", "discard 3M 1M")),
                Arguments.of(List.of("write -c 2M 64k", "write -P 4 7M 3M")),
                Arguments.of(List.of("aio_write -P 5 0 4k", "aio_write -P 6 1M 4k", "aio_flush")),
                Arguments.of(List.of("writev -P 7 6M 3k 5k", "write -P 8 4095 2")),
                Arguments.of(List.of("read 0 1M")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scripts")
    void writesMarkTheGranulesQemuWouldMark(List<String> script) throws Exception {
        Path q = copy(template, "q");
        Path j = copy(template, "j");
        qemuIo(q, script);
        jblockIo(j, script);
        assertThat(infoJson(j)).doesNotContain("in-use");
        assertSameImages(q, j);
        assertThat(qemu(List.of("compare", q.toString(), j.toString())).status()).as("same guest data").isZero();
    }

    @Test
    void seededRandomWorkloadMatchesAShadowAndQemu() throws Exception {
        long seed = new Random().nextLong();
        System.out.println("Qcow2BitmapTrackingCompatTest seed " + seed);
        Random r = new Random(seed);
        List<String> script = new ArrayList<>();
        List<long[]> touched = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            long len = 1 + r.nextInt(r.nextBoolean() ? 4096 : 300_000);
            long off = r.nextLong(SIZE - len + 1);
            switch (r.nextInt(4)) {
                case 0 -> script.add("write -z " + off + " " + len);
                case 1 -> script.add("discard " + off + " " + len);
                default -> script.add("write -P " + r.nextInt(256) + " " + off + " " + len);
            }
            touched.add(new long[] {off, off + len});
        }
        Path q = copy(template, "q");
        Path j = copy(template, "j");
        qemuIo(q, script);
        jblockIo(j, script);
        assertSameImages(q, j);
        for (String[] b : new String[][] {{"b1", "65536"}, {"b2", "4096"}, {"b4", "512"}}) {
            long g = Long.parseLong(b[1]);
            // The template's own writes were recorded by qemu-io before: they are part of the shadow too.
            List<long[]> expected = shadow(g, touched, List.of(new long[] {0, 256 << 10}, new long[] {3 << 20,
                    4 << 20}));
            assertThat(text(dirtyRanges(dirtyMap(j, b[0])))).as("seed %d, bitmap %s", seed, b[0])
                    .isEqualTo(text(expected));
        }
        assertThat(dirtyRanges(dirtyMap(j, "b3"))).as("the disabled bitmap records nothing").isEmpty();
        assertThat(qemu(List.of("compare", q.toString(), j.toString())).status()).as("seed %d", seed).isZero();
    }

    private static List<String> text(List<long[]> ranges) {
        return ranges.stream().map(x -> x[0] + ".." + x[1]).toList();
    }

    /** Granule-rounded union of the byte ranges, cut at the image end, as merged [start, end) runs. */
    private static List<long[]> shadow(long g, List<long[]> ranges, List<long[]> before) {
        java.util.BitSet bits = new java.util.BitSet();
        for (List<long[]> list : List.of(ranges, before)) {
            for (long[] x : list) {
                bits.set((int) (x[0] / g), (int) ((x[1] - 1) / g) + 1);
            }
        }
        List<long[]> out = new ArrayList<>();
        int i = bits.nextSetBit(0);
        while (i >= 0) {
            int end = bits.nextClearBit(i);
            out.add(new long[] {i * g, Math.min(SIZE, end * g)});
            i = bits.nextSetBit(end);
        }
        return out;
    }

    /**
     * Many virtual threads write, zero and discard through one drive at once
     * (seeded); every range any of them touched must be dirty in QEMU's
     * reading of each enabled bitmap, and nothing else.
     */
    @Test
    void concurrentRequestsMarkEveryRangeTheyTouched() throws Exception {
        long seed = new Random().nextLong();
        System.out.println("Qcow2BitmapTrackingCompatTest concurrent seed " + seed);
        Path j = copy(template, "c");
        List<long[]> touched = java.util.Collections.synchronizedList(new ArrayList<>());
        try (io.jblock.block.Drive d = io.jblock.options.DriveOpener.standard().open(
                io.jblock.options.DriveConfig.parseDrive("file=" + j + ",format=qcow2,discard=unmap"))) {
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                Random r = new Random(seed + t);
                threads.add(Thread.ofVirtual().start(() -> {
                    try {
                        for (int i = 0; i < 25; i++) {
                            int len = 1 + r.nextInt(r.nextBoolean() ? 2048 : 200_000);
                            long off = r.nextLong(SIZE - len + 1);
                            switch (r.nextInt(3)) {
                                case 0 -> d.writeZeroes(off, len, 0);
                                case 1 -> d.discard(off, len);
                                default -> d.write(off, ByteBuffer.allocate(len), 0);
                            }
                            touched.add(new long[] {off, off + len});
                        }
                    } catch (io.jblock.block.BlockException e) {
                        throw new AssertionError(e);
                    }
                }));
            }
            for (Thread t : threads) {
                t.join();
            }
        }
        assertCheckClean(j);
        assertThat(infoJson(j)).doesNotContain("in-use");
        for (String[] b : new String[][] {{"b1", "65536"}, {"b2", "4096"}, {"b4", "512"}}) {
            List<long[]> expected = shadow(Long.parseLong(b[1]), touched,
                    List.of(new long[] {0, 256 << 10}, new long[] {3 << 20, 4 << 20}));
            assertThat(text(dirtyRanges(dirtyMap(j, b[0])))).as("seed %d, bitmap %s", seed, b[0])
                    .isEqualTo(text(expected));
        }
    }

    @Test
    void jblockReadsBitmapsAsQemuDoes() throws Exception {
        Path img = copy(template, "r");
        qemuIo(img, List.of("write 7M 10k", "discard 9M 4k"));
        try (io.jblock.block.Drive d = io.jblock.options.DriveOpener.standard().open(
                io.jblock.options.DriveConfig.parseDrive("file=" + img + ",format=qcow2,read-only=on"))) {
            var bitmaps = ((io.jblock.format.qcow2.Qcow2Node) d.root()).bitmaps();
            for (String name : List.of("b1", "b2", "b3", "b4")) {
                List<long[]> mine = new ArrayList<>();
                for (long[] x : bitmaps.dirtyRanges(name)) {
                    mine.add(new long[] {x[0], x[0] + x[1]});
                }
                assertThat(text(mine)).as(name).isEqualTo(text(dirtyRanges(dirtyMap(img, name))));
            }
        }
    }

    @Test
    void imageWithBitmapsInUseIsWrittenAsQemuWritesIt() throws Exception {
        Path inUse = copy(template, "u");
        BitmapOracle.leaveInUse(inUse, "write -P 9 1M 64k");
        Path q = copy(inUse, "q");
        Path j = copy(inUse, "j");
        List<String> script = List.of("write -P 3 2M 64k", "discard 0 64k");
        qemuIo(q, script);
        jblockIo(j, script);
        assertThat(infoJson(j)).as("still in use: their data was lost").contains("in-use");
        assertSameImages(q, j);
    }

    @Test
    void commitIntoAnImageWithBitmapsDirtiesThemAsQemuImgDoes() throws Exception {
        Path[] tops = new Path[2];
        for (int i = 0; i < 2; i++) {
            Path d = Files.createDirectories(dir.resolve("commit-" + i + "-" + System.nanoTime()));
            Path base = d.resolve("base.qcow2");
            Files.copy(template, base);
            Path top = d.resolve("top.qcow2");
            qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top.toString());
            qemuImg("bitmap", "--add", top.toString(), "t");
            qemuIo(top, List.of("write -P 5 5M 100k", "write -P 6 9M 1k"));
            QemuImgOracle.Run run = i == 0 ? qemu(List.of("commit", top.toString()))
                    : QemuImgOracle.jblock(List.of("commit", top.toString()));
            assertThat(run.status()).as("commit: %s", run).isZero();
            tops[i] = top;
        }
        assertSameImages(tops[0].resolveSibling("base.qcow2"), tops[1].resolveSibling("base.qcow2"));
        assertSameImages(tops[0], tops[1]);
    }

    @Test
    void rebaseOfAnImageWithBitmapsDirtiesThemAsQemuImgDoes() throws Exception {
        Path[] tops = new Path[2];
        for (int i = 0; i < 2; i++) {
            Path d = Files.createDirectories(dir.resolve("rebase-" + i + "-" + System.nanoTime()));
            Path base = d.resolve("base.qcow2");
            qemuImg("create", "-q", "-f", "qcow2", base.toString(), "10M");
            qemuIo(base, List.of("write -P 7 1M 128k"));
            Path top = copy(template, "top");
            Files.move(top, d.resolve("top.qcow2"));
            top = d.resolve("top.qcow2");
            qemuImg("rebase", "-u", "-b", "base.qcow2", "-F", "qcow2", top.toString());
            List<String> a = List.of("rebase", "-b", "", top.toString());
            QemuImgOracle.Run run = i == 0 ? qemu(a) : QemuImgOracle.jblock(a);
            assertThat(run.status()).as("rebase: %s", run).isZero();
            tops[i] = top;
        }
        assertSameImages(tops[0], tops[1]);
    }

    @Test
    void resizeCarriesBitmapsAsQemuImgDoes() throws Exception {
        Path q = copy(template, "q");
        Path j = copy(template, "j");
        for (List<String> step : List.of(List.of("resize", "IMG", "20M"), List.of("resize", "--shrink", "IMG", "5M"))) {
            assertThat(QemuImgOracle.jblock(step.stream().map(s -> s.replace("IMG", j.toString())).toList()))
                    .isEqualTo(qemu(step.stream().map(s -> s.replace("IMG", q.toString())).toList()));
            assertSameImages(q, j);
        }
        qemuIo(q, List.of("write 4M 1M"));
        jblockIo(j, List.of("write 4M 1M"));
        assertSameImages(q, j);
    }

    @Test
    void readOnlyUseChangesNothingOnDisk() throws Exception {
        Path img = copy(template, "ro");
        String before = digest(img);
        assertThat(QemuImgOracle.jblock(List.of("info", img.toString())).status()).isZero();
        assertThat(QemuImgOracle.jblock(List.of("check", img.toString())).status()).isZero();
        assertThat(QemuImgOracle.jblock(List.of("map", img.toString())).status()).isZero();
        assertThat(QemuImgOracle.jblock(List.of("convert", "--bitmaps", "-O", "qcow2", img.toString(),
                dir.resolve("ro-out-" + System.nanoTime() + ".qcow2").toString())).status()).isZero();
        jblockIo(img, List.of("read 0 64k"), "-r");
        assertThat(digest(img)).as("the image after read-only use").isEqualTo(before);
    }

    private static String digest(Path p) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(1 << 16);
            while (ch.read(b.clear()) > 0) {
                md.update(b.flip());
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
