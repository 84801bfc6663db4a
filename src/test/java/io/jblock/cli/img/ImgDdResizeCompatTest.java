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
 * {@code dd} and {@code resize} against qemu-img: the same output, status
 * and resulting file (length, allocation, extents, data) for block sizes,
 * counts and skips (qemu-img's units, not dd(1)'s), and for growing,
 * shrinking and preallocating raw images; and qemu-img's messages.
 */
class ImgDdResizeCompatTest {
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

    private static String out() {
        return dir.resolve("out.img").toString();
    }

    private static void dd(String... operands) throws Exception {
        List<String> a = args("dd");
        a.addAll(List.of(operands));
        CompatSupport.assertCreatesSameAsQemu(Path.of(out()), t -> { }, a);
    }

    @Test
    void ddBlockSizesCountsAndSkips() throws Exception {
        String sparse = dir.resolve("sparse.img").toString();
        String top = dir.resolve("top.qcow2").toString();
        for (String[] ops : new String[][] {{}, {"bs=1M", "count=3"}, {"bs=1M", "count=3", "skip=2"},
                {"bs=1M", "skip=20"}, {"bs=1000", "skip=3", "count=7"}, {"count=0"}, {"bs=4k", "skip=5"},
                {"bs=3k", "count=1k"}, {"bs=64k", "skip=100", "count=2"}}) {
            List<String> a = new java.util.ArrayList<>(List.of(ops));
            a.add("if=" + sparse);
            a.add("of=" + out());
            dd(a.toArray(new String[0]));
            a.set(a.size() - 2, "if=" + top);
            a.addFirst("-f");
            a.add(1, "qcow2");
            dd(a.toArray(new String[0]));
        }
        dd("if=" + dir.resolve("odd.img"), "of=" + out());
        dd("-U", "if=" + dir.resolve("compressed.qcow2"), "of=" + out(), "bs=8k");
    }

    @Test
    void ddMessages() throws Exception {
        String in = "if=" + dir.resolve("sparse.img");
        String of = "of=" + out();
        for (String[] ops : new String[][] {{in, of, "bs=0"}, {in, of, "bs=3G"}, {in, of, "bs=x"},
                {in, of, "count=-1"}, {in}, {of}, {in, of, "foo=1"}, {in, of, "foo"}, {"-O", "foo", in, of},
                {"if=" + dir.resolve("missing.img"), of}, {in, of, "skip=x"}, {"-x", in, of}}) {
            dd(ops);
        }
    }

    private static void resize(Path template, String... a) throws Exception {
        List<String> cmd = args("resize");
        cmd.addAll(List.of(a));
        CompatSupport.assertCreatesSameAsQemu(Path.of(out()),
                t -> Files.copy(template, t, StandardCopyOption.REPLACE_EXISTING), cmd);
    }

    @Test
    void resizeGrowAndShrinkRaw() throws Exception {
        Path sparse = dir.resolve("sparse.img");
        for (String[] a : new String[][] {{"+1M"}, {"-1M"}, {"--shrink", "-1M"}, {"--", "-1M"}, {"0"}, {"-20M"},
                {"--shrink", "-20M"}, {"--preallocation=full", "+1M"}, {"--preallocation=falloc", "20M"},
                {"--preallocation=off", "12M"}, {"--preallocation=metadata", "+1M"},
                {"--preallocation=falloc", "--shrink", "-1M"}, {"-q", "+1M"}, {"18446744073709551615"},
                {"+1000"}, {"-f", "raw", "--shrink", "1000"}, {"-f", "raw", "10M"}, {"1x"},
                {"99999999999999999999"}, {"--preallocation=bogus", "+1M"}, {"-U", "+1M"}}) {
            String[] cmd = new String[a.length + 1];
            System.arraycopy(a, 0, cmd, 0, a.length - 1);
            cmd[a.length - 1] = out();
            cmd[a.length] = a[a.length - 1];
            resize(sparse, cmd);
        }
        resize(dir.resolve("odd.img"), "-f", "raw", out(), "+1");
        resize(sparse, "--image-opts", "driver=raw,file.filename=" + out(), "+1M");
        resize(sparse, "--image-opts", "driver=raw,size=1M,file.filename=" + out(), "+1M");
        resize(sparse, out());
        resize(sparse, out(), out(), "1M");
        CompatSupport.assertCreatesSameAsQemu(Path.of(out()), t -> Files.createDirectories(t),
                args("resize", out(), "1M"));
        assertThat(images).isNotEmpty();
    }
}
