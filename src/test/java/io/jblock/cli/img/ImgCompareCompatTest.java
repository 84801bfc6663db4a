package io.jblock.cli.img;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code compare} against qemu-img: identical images in different formats,
 * content mismatches (in data, in holes, past the common size), size
 * mismatches with and without -s, strict block-status mismatches, -p and
 * -q, and the exit statuses 0, 1 and 2.
 */
class ImgCompareCompatTest {
    private static Path dir;
    private static Map<Path, String> images;

    @BeforeAll
    static void makeImages() throws Exception {
        dir = CompatSupport.freshDir();
        images = SampleImages.make(dir);
        Path sparse = dir.resolve("sparse.img");
        SampleImages.qemuImg("convert", "-O", "qcow2", sparse.toString(), dir.resolve("sparse.qcow2").toString());
        Files.copy(sparse, dir.resolve("byte.img"));
        SampleImages.qemuIo(dir.resolve("byte.img"), "raw", "write -P 9 3000000 1");
        Files.copy(sparse, dir.resolve("longer.img"));
        SampleImages.qemuImg("resize", "-q", "-f", "raw", dir.resolve("longer.img").toString(), "12M");
        Files.copy(dir.resolve("longer.img"), dir.resolve("longer-data.img"));
        SampleImages.qemuIo(dir.resolve("longer-data.img"), "raw", "write -P 9 11M 1");
        SampleImages.qemuImg("convert", "-O", "raw", dir.resolve("top.qcow2").toString(),
                dir.resolve("top.img").toString());
    }

    @AfterAll
    static void removeImages() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private static void allForms(String a, String b) {
        for (List<String> form : List.of(args(), args("-s"), args("-p"), args("-q"), args("-s", "-q"),
                args("-U", "-p", "-s"))) {
            List<String> cmd = args("compare");
            cmd.addAll(form);
            cmd.add(dir.resolve(a).toString());
            cmd.add(dir.resolve(b).toString());
            assertSameAsQemu(cmd);
        }
    }

    @Test
    void pairsOfImages() {
        String[][] pairs = {{"sparse.img", "sparse.img"}, {"sparse.img", "sparse.qcow2"}, {"sparse.qcow2", "sparse.img"},
                {"sparse.img", "byte.img"}, {"sparse.img", "longer.img"}, {"longer.img", "sparse.img"},
                {"longer.img", "longer-data.img"}, {"sparse.img", "longer-data.img"}, {"top.qcow2", "mid.qcow2"},
                {"mid.qcow2", "base.qcow2"}, {"top.qcow2", "top.img"}, {"top.img", "top.qcow2"},
                {"odd.img", "empty.img"}, {"empty.img", "empty.img"}, {"compressed.qcow2", "extl2.qcow2"},
                {"prealloc.qcow2", "v2.qcow2"}, {"falloc.img", "full.img"}};
        for (String[] p : pairs) {
            allForms(p[0], p[1]);
        }
    }

    @Test
    void everySampleAgainstItsRawCopy() throws Exception {
        List<String> names = new ArrayList<>();
        for (var e : images.entrySet()) {
            String copy = e.getKey().getFileName() + ".copy.raw";
            SampleImages.qemuImg("convert", "-f", e.getValue(), "-O", "raw", e.getKey().toString(),
                    dir.resolve(copy).toString());
            assertSameAsQemu(args("compare", "-f", e.getValue(), "-F", "raw", e.getKey().toString(),
                    dir.resolve(copy).toString()));
            names.add(copy);
        }
        assertThat(names).hasSize(images.size());
    }

    @Test
    void exitStatusTwoForBadImagesAndOptions() {
        String img = dir.resolve("sparse.img").toString();
        assertSameAsQemu(args("compare", img));
        assertSameAsQemu(args("compare", img, img, img));
        assertSameAsQemu(args("compare", "-T", "bogus", img, img));
        assertSameAsQemu(args("compare", "-T", "none", img, img));
        assertSameAsQemu(args("compare", img, dir.resolve("missing.img").toString()));
        assertSameAsQemu(args("compare", "-f", "qcow2", img, img));
        assertSameAsQemu(args("compare", "-F", "qcow2", img, img));
        assertSameAsQemu(args("compare", "-x", img, img));
        assertSameAsQemu(args("compare", img, img, "-f"));
    }
}
