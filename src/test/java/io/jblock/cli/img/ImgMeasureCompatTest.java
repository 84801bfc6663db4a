package io.jblock.cli.img;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code measure} against qemu-img 7.2: the same figures (human and JSON),
 * errors and exit status, for virtual sizes and for input images (full,
 * sparse and qcow2 ones, with and without a backing file).
 */
class ImgMeasureCompatTest {
    private static Path dir;

    @BeforeAll
    static void makeImages() throws Exception {
        dir = CompatSupport.freshDir();
        qemu("create", "-q", "-f", "raw", at("full.raw"), "3M");
        qemu("create", "-q", "-f", "raw", at("sparse.raw"), "100M");
        qemu("create", "-q", "-f", "qcow2", at("data.qcow2"), "100M");
        qemu("create", "-q", "-f", "qcow2", "-o", "compat=0.10", at("v2.qcow2"), "10M");
        List<String> io = List.of(Peers.require("qemu-io"));
        run(io, "-f", "raw", "-c", "write -P 1 0 1M", "-c", "write -P 2 50M 100k", "-c", "write 99M 1",
                at("sparse.raw"));
        run(io, "-f", "raw", "-c", "write -P 3 0 3M", at("full.raw"));
        run(io, "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -P 2 50M 100k", "-c", "write -z 60M 1M",
                at("data.qcow2"));
        qemu("create", "-q", "-f", "qcow2", "-b", "data.qcow2", "-F", "qcow2", at("overlay.qcow2"));
        run(io, "-f", "qcow2", "-c", "write -P 4 70M 64k", at("overlay.qcow2"));
    }

    @AfterAll
    static void removeImages() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private static String at(String name) {
        return dir.resolve(name).toString();
    }

    private static void qemu(String... a) {
        assertThat(QemuImgOracle.qemu(args(a)).status()).as("qemu-img %s", List.of(a)).isZero();
    }

    private static void run(List<String> tool, String... a) throws Exception {
        List<String> cmd = new ArrayList<>(tool);
        cmd.addAll(List.of(a));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertThat(p.waitFor()).as("%s", cmd).isZero();
    }

    static Stream<String> outputs() {
        return Stream.of("", "-O qcow2", "-O qcow2 -o cluster_size=512", "-O qcow2 -o compat=0.10",
                "-O qcow2 --output=json", "--output=json", "--output=human", "-O qcow2 -o extended_l2=on,refcount_bits=1",
                "-O qcow2 -o preallocation=metadata", "-O qcow2 -o preallocation=falloc", "-O qcow2 -o cluster_size=2M",
                "-O qcow2 -o backing_file=x", "-O raw -o preallocation=full", "-O qcow2 -o refcount_bits=64,cluster_size=4k");
    }

    @ParameterizedTest
    @MethodSource("outputs")
    void theSameFiguresForEachInputImage(String options) {
        for (String image : List.of("full.raw", "sparse.raw", "data.qcow2", "v2.qcow2", "overlay.qcow2")) {
            List<String> a = args("measure");
            if (!options.isEmpty()) {
                a.addAll(List.of(options.split(" ")));
            }
            a.add(at(image));
            assertSameAsQemu(a);
        }
    }

    @ParameterizedTest
    @MethodSource("outputs")
    void theSameFiguresForVirtualSizes(String options) {
        for (String size : List.of("0", "1", "512", "1000", "1M", "1G", "1T", "100T", "1P")) {
            List<String> a = args("measure", "--size", size);
            if (!options.isEmpty()) {
                a.addAll(List.of(options.split(" ")));
            }
            assertSameAsQemu(a);
        }
    }

    @Test
    void randomSizesAndClusterSizesMatch() {
        long seed = System.nanoTime();
        System.out.println("ImgMeasureCompatTest seed " + seed);
        Random r = new Random(seed);
        for (int i = 0; i < 30; i++) {
            long size = r.nextLong(1L << (10 + r.nextInt(40)));
            int clusterBits = 9 + r.nextInt(13);
            int refcountBits = 1 << r.nextInt(7);
            String ext = clusterBits >= 14 && r.nextBoolean() ? ",extended_l2=on" : "";
            assertSameAsQemu(args("measure", "-O", "qcow2", "--size", Long.toString(size), "-o",
                    "cluster_size=" + (1 << clusterBits) + ",refcount_bits=" + refcountBits + ext));
        }
    }

    static Stream<List<String>> errors() {
        return Stream.of(args("measure"), args("measure", "-f", "raw"), args("measure", "-l", "snap"),
                args("measure", "--size", "1G", "IMG"), args("measure", "IMG", "IMG"),
                args("measure", "--size", "1G", "-O", "foo"), args("measure", "--size", "1G", "-O", "vmdk"),
                args("measure", "--size", "1G", "-O", "file"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "preallocation=foo"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "compat=foo"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "cluster_size=1000"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "compat=0.10,refcount_bits=8"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "refcount_bits=3"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "foo=bar"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "cluster_size=abc"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "extended_l2=on,cluster_size=8k"),
                args("measure", "--size", "1G", "-O", "qcow2", "-o", "encrypt.format=luks"),
                args("measure", "--size", "1G", "--output=xml"), args("measure", "--size", "abc"),
                args("measure", "--size", "-1"), args("measure", "-O", "qcow2", "-o", "size=2G"),
                args("measure", "-O", "qcow2", "--size", "1G", "-o", "size=2G"),
                args("measure", "-O", "qcow2", "--size", "10P"), args("measure", "-O", "qcow2", "nope"),
                args("measure", "-o", ",", "--size", "1G"));
    }

    @ParameterizedTest
    @MethodSource
    void errors(List<String> a) {
        List<String> withImage = new ArrayList<>();
        for (String s : a) {
            withImage.add(s.equals("IMG") ? at("full.raw") : s);
        }
        assertSameAsQemu(withImage);
    }

    @Test
    void theMeasuredSizeHoldsTheImageJblockCreates() {
        for (String o : List.of("cluster_size=512", "preallocation=metadata", "refcount_bits=1,cluster_size=1k")) {
            QemuImgOracle.Run m = QemuImgOracle.jblock(args("measure", "-O", "qcow2", "-o", o, "--size", "5M"));
            long fully = Long.parseLong(m.out().lines().filter(l -> l.startsWith("fully allocated size: "))
                    .findFirst().orElseThrow().substring("fully allocated size: ".length()));
            String image = at("measured.qcow2");
            assertThat(QemuImgOracle.jblock(args("create", "-q", "-f", "qcow2", "-o", o, image, "5M")).status())
                    .isZero();
            assertThat(new java.io.File(image).length()).as("created with %s", o).isLessThanOrEqualTo(fully);
        }
    }
}
