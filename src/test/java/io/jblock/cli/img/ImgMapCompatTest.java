package io.jblock.cli.img;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;

/**
 * {@code map} against qemu-img on every kind of sample image, in JSON and
 * human output, whole and in windows, named plainly, with -f and with
 * --image-opts; and qemu-img's messages for bad command lines.
 */
class ImgMapCompatTest {
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

    @Test
    void everyImageInBothOutputs() {
        for (var e : images.entrySet()) {
            String name = e.getKey().toString();
            for (List<String> form : List.of(args(), args("--output=json"), args("--output", "human"),
                    args("-f", e.getValue(), "--output=json"), args("-U", "--format=" + e.getValue()))) {
                List<String> a = args("map");
                a.addAll(form);
                a.add(name);
                assertSameAsQemu(a);
            }
        }
    }

    @Test
    void windowsOfTheImage() {
        for (Path p : List.of(dir.resolve("sparse.img"), dir.resolve("top.qcow2"), dir.resolve("extl2.qcow2"),
                dir.resolve("odd.img"))) {
            for (String[] w : new String[][] {{"0", "0"}, {"4k", "1M"}, {"1000", "3"}, {"5M", "100M"},
                    {"100M", "1"}, {"3", "700k"}}) {
                for (String out : new String[] {"json", "human"}) {
                    assertSameAsQemu(args("map", "--output=" + out, "--start-offset=" + w[0],
                            "--max-length", w[1], p.toString()));
                }
            }
            assertSameAsQemu(args("map", "-s", "64k", "-l", "64k", "--output=json", p.toString()));
        }
    }

    @Test
    void imageOptions() {
        assertSameAsQemu(args("map", "--output=json", "--image-opts",
                "driver=qcow2,file.filename=" + dir.resolve("mid.qcow2")));
        assertSameAsQemu(args("map", "--image-opts", "driver=raw,file.filename=" + dir.resolve("sparse.img")));
        assertSameAsQemu(args("map", "--output=json", "--image-opts",
                "driver=raw,offset=1M,size=4M,file.filename=" + dir.resolve("sparse.img")));
    }

    @Test
    void badCommandLines() {
        String img = dir.resolve("sparse.img").toString();
        assertSameAsQemu(args("map"));
        assertSameAsQemu(args("map", img, img));
        assertSameAsQemu(args("map", "--output=xml", img));
        assertSameAsQemu(args("map", "--start-offset=-1", img));
        assertSameAsQemu(args("map", "--max-length=1x", img));
        assertSameAsQemu(args("map", "-x", img));
        assertSameAsQemu(args("map", img, "--output"));
        assertSameAsQemu(args("map", dir.resolve("missing.img").toString()));
        assertSameAsQemu(args("map", "-f", "qcow2", img));
    }
}
