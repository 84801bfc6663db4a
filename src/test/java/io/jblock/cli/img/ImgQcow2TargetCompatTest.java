package io.jblock.cli.img;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;

import static io.jblock.cli.img.CompatSupport.args;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * PENDING until qcow2 writes and qcow2 creation are merged: convert, resize
 * and dd with qcow2 targets, against qemu-img. The class name does not end
 * in "Test", so surefire leaves it out of the suite; rename it to
 * ImgQcow2TargetCompatTest once {@code jblock img create -f qcow2} and
 * qcow2 writes work.
 *
 * <p>Host offsets in a qcow2 target depend on the order clusters were
 * allocated in, so maps are compared without them; what must match is the
 * output, the status, the guest contents ({@code qemu-img compare}), the
 * allocation (map without offsets), and a clean {@code qemu-img check}.
 */
class ImgQcow2TargetCompatTest {
    private static Path dir;
    private static Map<Path, String> images;

    @BeforeAll
    static void makeImages() throws Exception {
        dir = CompatSupport.freshDir();
        images = SampleImages.make(dir);
    }

    @AfterAll
    static void removeImages() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private static Path out() {
        return dir.resolve("out.qcow2");
    }

    private static Path expected() {
        return dir.resolve("expected.qcow2");
    }

    /** Runs the command with qemu-img (target renamed to expected.qcow2), then with jblock, and compares. */
    private static void sameQcow2(CompatSupport.Setup setup, String... a) throws Exception {
        CompatSupport.deleteTree(out());
        setup.prepare(out());
        QemuImgOracle.Run q = QemuImgOracle.qemu(args(a));
        if (Files.exists(out())) {
            Files.move(out(), expected(), StandardCopyOption.REPLACE_EXISTING);
        }
        setup.prepare(out());
        QemuImgOracle.Run j = QemuImgOracle.jblock(args(a));
        assertThat(j).as("jblock vs qemu-img for %s", List.of(a)).isEqualTo(q);
        if (q.status() != 0) {
            return;
        }
        assertThat(QemuImgOracle.qemu(args("check", out().toString())).status()).as("check").isZero();
        assertThat(QemuImgOracle.qemu(args("compare", "-f", "qcow2", "-F", "qcow2", expected().toString(),
                out().toString())).out()).contains("Images are identical.");
        assertThat(mapWithoutOffsets(out())).isEqualTo(mapWithoutOffsets(expected()));
    }

    private static String mapWithoutOffsets(Path p) {
        return QemuImgOracle.qemu(args("map", "--output=json", "-f", "qcow2", p.toString())).out()
                .replaceAll(", \"offset\": [0-9]+", "");
    }

    @Test
    void convertEverySampleToQcow2() throws Exception {
        for (var e : images.entrySet()) {
            sameQcow2(t -> { }, "convert", "-O", "qcow2", e.getKey().toString(), out().toString());
            sameQcow2(t -> { }, "convert", "-O", "qcow2", "-o", "cluster_size=4k", e.getKey().toString(),
                    out().toString());
        }
    }

    @Test
    void compressedTarget() throws Exception {
        // sparse.img's zeroed range is an unwritten extent, which SEEK_DATA reports as data or hole
        // depending on the page cache: a copy made by convert has plain holes, the same for both tools.
        SampleImages.qemuImg("convert", "-O", "raw", dir.resolve("sparse.img").toString(),
                dir.resolve("holes.img").toString());
        for (String src : List.of("holes.img", "top.qcow2", "compressed.qcow2")) {
            sameQcow2(t -> { }, "convert", "-c", "-O", "qcow2", dir.resolve(src).toString(), out().toString());
        }
        sameQcow2(t -> { }, "convert", "-c", "-O", "qcow2", "-o", "preallocation=full",
                dir.resolve("sparse.img").toString(), out().toString());
    }

    @Test
    void targetWithBackingFile() throws Exception {
        sameQcow2(t -> { }, "convert", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2",
                dir.resolve("mid.qcow2").toString(), out().toString());
        sameQcow2(t -> { }, "convert", "-O", "qcow2", "-B", "base.qcow2", dir.resolve("mid.qcow2").toString(),
                out().toString());
        sameQcow2(t -> { }, "convert", "-O", "qcow2", "-o", "backing_file=base.qcow2,backing_fmt=qcow2",
                dir.resolve("top.qcow2").toString(), out().toString());
    }

    @Test
    void existingQcow2Target() throws Exception {
        CompatSupport.Setup fresh = t -> SampleImages.qemuImg("create", "-q", "-f", "qcow2", t.toString(), "10M");
        sameQcow2(fresh, "convert", "-n", "-O", "qcow2", dir.resolve("sparse.img").toString(), out().toString());
        sameQcow2(fresh, "convert", "-n", "--target-is-zero", "-O", "qcow2", dir.resolve("sparse.img").toString(),
                out().toString());
        sameQcow2(fresh, "convert", "-n", "-S", "0", "-O", "qcow2", dir.resolve("sparse.img").toString(),
                out().toString());
    }

    @Test
    void resizeQcow2() throws Exception {
        CompatSupport.Setup copy = t -> Files.copy(dir.resolve("base.qcow2"), t, StandardCopyOption.REPLACE_EXISTING);
        sameQcow2(copy, "resize", out().toString(), "+1M");
        sameQcow2(copy, "resize", "--shrink", out().toString(), "-1M");
        sameQcow2(copy, "resize", out().toString(), "-1M");
        sameQcow2(copy, "resize", "--preallocation=metadata", out().toString(), "8M");
    }

    @Test
    void ddToQcow2() throws Exception {
        sameQcow2(t -> { }, "dd", "-O", "qcow2", "if=" + dir.resolve("sparse.img"), "of=" + out(), "bs=64k");
    }
}
