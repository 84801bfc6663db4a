package io.jblock.cli.img;

import io.jblock.testing.CountingEngine;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code convert} against qemu-img: each run of both tools on the same
 * command line must print the same, exit the same, and leave the same
 * target, byte for byte and extent for extent (FileState: length,
 * allocation, data extents, data). Sources: every sample image (raw sparse
 * and preallocated, qcow2 with a backing chain, zero and compressed
 * clusters, extended L2), a seeded random mix of data and zero sectors, and
 * several sources at once; raw targets, created or given (-n).
 */
class ImgConvertCompatTest {
    private static Path dir;
    private static Map<Path, String> images;
    private static Path mix;

    @BeforeAll
    static void makeImages() throws Exception {
        dir = CompatSupport.freshDir();
        images = SampleImages.make(dir);
        long seed = 20261126L;
        System.out.println("ImgConvertCompatTest random source seed " + seed);
        Random r = new Random(seed);
        byte[] b = new byte[6 * 1024 * 1024 + 1536];
        int[] runs = {512, 1024, 1536, 4096, 8192, 65536};
        for (int i = 0; i < b.length; ) {
            int n = runs[r.nextInt(runs.length)];
            if (r.nextBoolean()) {
                for (int j = i; j < Math.min(b.length, i + n); j++) {
                    b[j] = r.nextInt(10) == 0 ? 0 : (byte) (1 + r.nextInt(255));
                }
            }
            i += n;
        }
        mix = dir.resolve("mix.img");
        Files.write(mix, b);
        SampleImages.qemuImg("convert", "-O", "qcow2", mix.toString(), dir.resolve("mix.qcow2").toString());
        SampleImages.qemuImg("convert", "-c", "-O", "qcow2", mix.toString(), dir.resolve("mixc.qcow2").toString());
        byte[] junk = new byte[12 << 20];
        r.nextBytes(junk);
        Files.write(dir.resolve("junk.img"), junk);
    }

    @AfterAll
    static void removeImages() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private static String out() {
        return dir.resolve("out.img").toString();
    }

    private static void same(String... a) throws Exception {
        sameTarget(t -> { }, a);
    }

    /**
     * As CompatSupport.assertCreatesSameAsQemu, with the target synced to
     * disk before it is measured: jblock's one real flush makes ext4
     * allocate the extents at once, qemu-img's target only at writeback,
     * and the extent tree's own block would count in one and not the other.
     */
    private static void sameTarget(CompatSupport.Setup setup, String... a) throws Exception {
        Path target = Path.of(out());
        CompatSupport.deleteTree(target);
        setup.prepare(target);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args(a));
        sync(target);
        FileState expectedFile = FileState.of(target);
        CompatSupport.deleteTree(target);
        setup.prepare(target);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args(a));
        sync(target);
        FileState actualFile = FileState.of(target);
        assertThat(actual).as("jblock vs qemu-img for %s", List.of(a)).isEqualTo(expected);
        assertThat(actualFile).as("file left by %s", List.of(a)).isEqualTo(expectedFile);
    }

    private static void sync(Path p) throws Exception {
        if (Files.isRegularFile(p)) {
            try (var ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.WRITE)) {
                ch.force(true);
            }
        }
    }

    /**
     * Same output, status, bytes and qemu-img map, not the same st_blocks:
     * in a fallocated file the one real flush jblock adds splits ext4's
     * unwritten extent on disk at once, which costs an extent-tree block
     * that qemu-img's target only pays at writeback.
     */
    private static void sameMapAndBytes(String... a) throws Exception {
        Path t = Path.of(out());
        CompatSupport.deleteTree(t);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args(a));
        byte[] expectedBytes = Files.readAllBytes(t);
        String expectedMap = QemuImgOracle.qemu(args("map", "--output=json", "-f", "raw", t.toString())).out();
        CompatSupport.deleteTree(t);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args(a));
        assertThat(actual).isEqualTo(expected);
        assertThat(Files.mismatch(t, writeTemp(expectedBytes))).isEqualTo(-1);
        assertThat(QemuImgOracle.qemu(args("map", "--output=json", "-f", "raw", t.toString())).out())
                .isEqualTo(expectedMap);
    }

    private static Path writeTemp(byte[] b) throws Exception {
        Path p = dir.resolve("expected.bytes");
        Files.write(p, b);
        return p;
    }

    /** With -n: the target starts as a copy of {@code template} for both runs. */
    private static void sameOnto(Path template, String... a) throws Exception {
        sameTarget(t -> Files.copy(template, t, StandardCopyOption.REPLACE_EXISTING), a);
    }

    @Test
    void everySampleToRaw() throws Exception {
        for (var e : images.entrySet()) {
            same("convert", e.getKey().toString(), out());
            same("convert", "-f", e.getValue(), "-O", "raw", "-p", e.getKey().toString(), out());
        }
    }

    @Test
    void sparseDetectionSizes() throws Exception {
        for (String src : List.of(mix.toString(), dir.resolve("mix.qcow2").toString(),
                dir.resolve("mixc.qcow2").toString(), dir.resolve("sparse.img").toString())) {
            for (String sparse : List.of("0", "512", "1k", "1536", "4k", "8k", "64k", "16M")) {
                same("convert", "-S", sparse, src, out());
            }
        }
    }

    @Test
    void parallelAndOutOfOrderWritesGiveTheSameTarget() throws Exception {
        for (String src : List.of(mix.toString(), dir.resolve("top.qcow2").toString())) {
            same("convert", "-m", "1", src, out());
            same("convert", "-m", "16", "-W", src, out());
            same("convert", "-W", "-p", src, out());
            same("convert", "-C", src, out());
            same("convert", "-r", "1G", src, out());
        }
        same("convert", "-C", dir.resolve("mixc.qcow2").toString(), out());
    }

    @Test
    void severalSourcesConcatenated() throws Exception {
        same("convert", dir.resolve("sparse.img").toString(), dir.resolve("odd.img").toString(),
                dir.resolve("top.qcow2").toString(), mix.toString(), out());
        same("convert", "-p", dir.resolve("empty.img").toString(), dir.resolve("odd.img").toString(),
                dir.resolve("odd.img").toString(), out());
    }

    @Test
    void waysOfNamingAndOpeningSources() throws Exception {
        same("convert", "--image-opts", "driver=raw,file.filename=" + mix, out());
        same("convert", "--image-opts", "driver=qcow2,file.filename=" + dir.resolve("top.qcow2"),
                "driver=raw,file.filename=" + mix, out());
        same("convert", "-U", "-T", "none", dir.resolve("mix.qcow2").toString(), out());
        same("convert", "-T", "directsync", "-q", "-p", mix.toString(), out());
        same("convert", "--salvage", dir.resolve("mixc.qcow2").toString(), out());
        same("convert", "-f", "raw", "file:" + mix, "file:" + out());
    }

    @Test
    void existingTargets() throws Exception {
        Path junk = dir.resolve("junk.img");
        sameOnto(junk, "convert", "-n", dir.resolve("sparse.img").toString(), out());
        sameOnto(junk, "convert", "-n", "-S", "0", dir.resolve("top.qcow2").toString(), out());
        sameOnto(junk, "convert", "-n", "-p", mix.toString(), out());
        sameOnto(dir.resolve("sparse.img"), "convert", "-n", "--target-is-zero", mix.toString(), out());
        sameOnto(dir.resolve("odd.img"), "convert", "-n", mix.toString(), out());
        sameOnto(junk, "convert", "-n", "--target-image-opts", dir.resolve("sparse.img").toString(),
                "driver=raw,file.filename=" + out());
    }

    @Test
    void creationOptions() throws Exception {
        same("convert", "-o", "preallocation=full", mix.toString(), out());
        sameMapAndBytes("convert", "-o", "preallocation=falloc", dir.resolve("sparse.img").toString(), out());
        same("convert", "-O", "file", dir.resolve("sparse.img").toString(), out());
        same("convert", "-o", "size=1M", dir.resolve("sparse.img").toString(), out());
        same("convert", "-o", "preallocation=bogus", dir.resolve("sparse.img").toString(), out());
        same("convert", "-t", "writethrough", "-T", "none", dir.resolve("mix.qcow2").toString(), out());
    }

    @Test
    void badCommandLines() throws Exception {
        String src = dir.resolve("sparse.img").toString();
        List<List<String>> cases = new ArrayList<>();
        for (String[] a : new String[][] {{"-n", "-o", "size=1M"}, {"--target-is-zero"}, {"--target-image-opts"},
                {"-c", "-C"}, {"-S", "4k", "-C"}, {"-C", "--salvage"}, {"-S", "100"}, {"-S", "17M"}, {"-S", "x"},
                {"-m", "0"}, {"-m", "17"}, {"-m", "x"}, {"-O", "foo"}, {"-t", "bogus"}, {"-T", "bogus"}, {"-c"},
                {"-B", "base.qcow2"}, {"-F", "raw"}, {"-r", "x"}, {"--bitmaps"}, {"--skip-broken-bitmaps"},
                {"-l", "snap"}, {"-o", "foo=bar"}, {"-o", ",x"}, {"-f", "qcow2"}, {"-x"}}) {
            List<String> c = args("convert");
            c.addAll(List.of(a));
            c.add(src);
            c.add(out());
            cases.add(c);
        }
        cases.add(args("convert", src));
        cases.add(args("convert", "-o", "help", src, out()));
        cases.add(args("convert", "-O", "raw", "-o", "help"));
        cases.add(args("convert", "-n", src, dir.resolve("missing.img").toString()));
        cases.add(args("convert", "-n", src, dir.resolve("odd.img").toString()));
        cases.add(args("convert", "-p", dir.resolve("missing.img").toString(), out()));
        cases.add(args("convert", src, out(), "-O"));
        for (List<String> c : cases) {
            CompatSupport.deleteTree(Path.of(out()));
            assertSameAsQemu(c);
            CompatSupport.deleteTree(Path.of(out()));
        }
    }

    /** A target that is also read (a source, or a source's backing file) is refused before anything is written. */
    @Test
    void targetThatIsReadIsRefusedAndLeftAlone() throws Exception {
        Path copy = dir.resolve("victim.img");
        Files.copy(mix, copy, StandardCopyOption.REPLACE_EXISTING);
        Path base = dir.resolve("victim-base.qcow2");
        Files.copy(dir.resolve("base.qcow2"), base, StandardCopyOption.REPLACE_EXISTING);
        SampleImages.qemuImg("create", "-q", "-f", "qcow2", "-b", "victim-base.qcow2", "-F", "qcow2",
                dir.resolve("victim-top.qcow2").toString());
        byte[] before = Files.readAllBytes(copy);
        byte[] baseBefore = Files.readAllBytes(base);
        assertSameAsQemu(args("convert", copy.toString(), copy.toString()));
        assertSameAsQemu(args("convert", "-n", copy.toString(), copy.toString()));
        assertSameAsQemu(args("convert", dir.resolve("victim-top.qcow2").toString(), base.toString()));
        assertThat(Files.readAllBytes(copy)).isEqualTo(before);
        assertThat(Files.readAllBytes(base)).isEqualTo(baseBefore);
        // qemu-img dd empties its input when it is also the output; jblock refuses, with convert's words.
        QemuImgOracle.Run dd = QemuImgOracle.jblock(args("dd", "if=" + copy, "of=" + copy));
        assertThat(dd.status()).isEqualTo(1);
        assertThat(dd.err()).isEqualTo("qemu-img: " + copy + ": error while creating output image: Failed to get"
                + " \"write\" lock\nIs another process using the image [" + copy + "]?\n");
        assertThat(Files.readAllBytes(copy)).isEqualTo(before);
    }

    /**
     * The default cache mode writes the target as unsafe (no flush during
     * the copy) and ends with exactly one fdatasync; an explicit -t unsafe
     * keeps qemu-img's none, and writethrough-like modes are not limited.
     */
    @Test
    void defaultCacheEndsWithExactlyOneFdatasync() throws Exception {
        for (String src : List.of(mix.toString(), dir.resolve("top.qcow2").toString())) {
            assertThat(datasyncs(args("convert", src, out()))).as("default cache, %s", src).isEqualTo(1);
            assertThat(datasyncs(args("convert", "-m", "16", "-W", src, out()))).isEqualTo(1);
            assertThat(datasyncs(args("convert", "-t", "unsafe", src, out()))).isZero();
            assertThat(datasyncs(args("convert", "-t", "writeback", src, out()))).isEqualTo(1);
        }
        byte[] junk = new byte[(int) Files.size(mix)];
        new Random(1).nextBytes(junk);
        Files.write(Path.of(out()), junk);
        assertThat(datasyncs(args("convert", "-n", mix.toString(), out()))).isEqualTo(1);
        assertThat(Files.mismatch(mix, Path.of(out()))).as("the target holds the source").isEqualTo(-1);
    }

    /**
     * With a real flush at the end (default cache, writeback), the target is
     * asked to start writing back every 16 MiB copied, so that flush is not
     * left the whole image; under -t unsafe (no flush) and when the data is
     * small, never. The target still holds the source and gets one fdatasync.
     */
    @Test
    void longCopiesStartWritebackBeforeTheirFlush() throws Exception {
        Path big = dir.resolve("big.img");
        byte[] b = new byte[40 << 20];
        new Random(2).nextBytes(b);
        Files.write(big, b);
        assertThat(counted(args("convert", big.toString(), out())).writebacks()).as("default cache").isEqualTo(2);
        assertThat(counted(args("convert", "-O", "qcow2", big.toString(), out())).writebacks()).isEqualTo(2);
        assertThat(counted(args("convert", "-t", "writeback", big.toString(), out())).writebacks()).isEqualTo(2);
        assertThat(counted(args("convert", "-t", "unsafe", big.toString(), out())).writebacks()).isZero();
        assertThat(counted(args("convert", "-t", "none", big.toString(), out())).writebacks()).isZero();
        assertThat(counted(args("convert", mix.toString(), out())).writebacks()).as("6 MiB").isZero();
        assertThat(counted(args("convert", big.toString(), out())).datasyncs()).isEqualTo(1);
        Files.delete(big);
    }

    private static long datasyncs(List<String> a) throws Exception {
        return counted(a).datasyncs();
    }

    private static CountingEngine counted(List<String> a) throws Exception {
        CountingEngine engine = new CountingEngine();
        ConvertRuns.convertWith(CountingEngine.provider(engine), a.toArray(new String[0]));
        String targetFormat = a.contains("-O") ? a.get(a.indexOf("-O") + 1) : "raw";
        QemuImgOracle.Run check = QemuImgOracle.qemu(args("compare", a.get(a.size() - 2), "-F", targetFormat, out()));
        assertThat(check.out()).as("qemu-img compare after %s", a).contains("Images are identical.");
        return engine;
    }
}
