package io.jblock.cli.img;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static io.jblock.cli.img.BitmapOracle.assertCheckClean;
import static io.jblock.cli.img.BitmapOracle.dirtyMap;
import static io.jblock.cli.img.BitmapOracle.infoJson;
import static io.jblock.cli.img.BitmapOracle.qemuImg;
import static io.jblock.cli.img.BitmapOracle.qemuIo;
import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code bitmap}, {@code convert --bitmaps}, and {@code info} / {@code check}
 * of images with persistent bitmaps, against qemu-img 7.2: each command runs
 * on two copies of an image qemu-img made, one copy per tool; stdout, stderr
 * (QEMU's random node names and the copies' folders masked) and the exit
 * status must match, then {@code qemu-img info --output=json} of the two
 * results, and every bitmap's dirty map as qemu-nbd reads it.
 */
class ImgBitmapCompatTest {
    private static Path dir;
    /** b1 (auto, 64k), b2 (auto, 4k), b3 (disabled, 64k), over a 10 MiB image with data in places. */
    private static Path plain;
    /** The same, after a qemu-io was killed with it open: every bitmap in use. */
    private static Path inUse;
    private static Path v2;
    private static Path raw;
    /** 20 MiB with bitmap "other": a merge source of another size. */
    private static Path big;
    /** 10 MiB with bitmap "other" (dirty 0..1M): a merge source of the same size. */
    private static Path same;

    @BeforeAll
    static void makeImages() throws Exception {
        dir = CompatSupport.freshDir();
        plain = dir.resolve("plain.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", plain.toString(), "10M");
        qemuImg("bitmap", "--add", plain.toString(), "b1");
        qemuImg("bitmap", "--add", "-g", "4k", plain.toString(), "b2");
        qemuImg("bitmap", "--add", "--disable", plain.toString(), "b3");
        qemuIo(plain, List.of("write -P 1 100k 3", "write -z 1M 200k", "write -P 2 9M 1M"));
        inUse = dir.resolve("inuse.qcow2");
        Files.copy(plain, inUse);
        BitmapOracle.leaveInUse(inUse, "write -P 3 2M 64k");
        v2 = dir.resolve("v2.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2.toString(), "10M");
        raw = dir.resolve("raw.img");
        qemuImg("create", "-q", "-f", "raw", raw.toString(), "10M");
        big = dir.resolve("big.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", big.toString(), "20M");
        qemuImg("bitmap", "--add", big.toString(), "other");
        same = dir.resolve("same.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", same.toString(), "10M");
        qemuImg("bitmap", "--add", "-g", "512", same.toString(), "other");
        qemuIo(same, List.of("write 0 1M", "write 5000 1"));
    }

    @AfterAll
    static void removeImages() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    @Test
    void inUseImageReallyHasItsBitmapsInUse() {
        assertThat(infoJson(inUse)).contains("\"in-use\"");
        assertThat(infoJson(plain)).doesNotContain("\"in-use\"");
    }

    // ------------------------------------------------------------------ img bitmap

    static Stream<Arguments> bitmapRuns() {
        return Stream.of(
                run("plain", "bitmap", "IMG", "b"),
                run("plain", "bitmap", "-g", "64k", "--remove", "IMG", "b1"),
                run("plain", "bitmap", "-F", "qcow2", "--add", "IMG", "b"),
                run("plain", "bitmap", "-b", "SAME", "--add", "IMG", "b"),
                run("plain", "bitmap", "--add", "IMG"),
                run("plain", "bitmap", "--add", "IMG", "b", "c"),
                run("plain", "bitmap", "--add", "-g", "1000", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "256", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "4G", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "2G", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "4294967808", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "abc", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "0", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "-1", "IMG", "b"),
                run("plain", "bitmap", "--add", "-g", "512", "IMG", "fine"),
                run("plain", "bitmap", "--add", "IMG", "x".repeat(1024)),
                run("plain", "bitmap", "--add", "IMG", "x".repeat(1023)),
                run("plain", "bitmap", "--add", "IMG", ""),
                run("plain", "bitmap", "--add", "--add", "IMG", "b"),
                run("plain", "bitmap", "--add", "IMG", "b1"),
                run("plain", "bitmap", "--remove", "IMG", "nope"),
                run("plain", "bitmap", "--remove", "IMG", "b2"),
                run("plain", "bitmap", "--remove", "--add", "-g", "512", "IMG", "b2"),
                run("plain", "bitmap", "--clear", "IMG", "b1"),
                run("plain", "bitmap", "--clear", "IMG", "nope"),
                run("plain", "bitmap", "--enable", "IMG", "b3"),
                run("plain", "bitmap", "--disable", "IMG", "b1"),
                run("plain", "bitmap", "--disable", "IMG", "nope"),
                run("plain", "bitmap", "--merge", "nope", "IMG", "b1"),
                run("plain", "bitmap", "--merge", "b1", "IMG", "nope"),
                run("plain", "bitmap", "--merge", "b2", "IMG", "b3"),
                run("plain", "bitmap", "--merge", "b3", "--merge", "b1", "IMG", "b2"),
                run("plain", "bitmap", "--merge", "other", "-b", "BIG", "IMG", "b1"),
                run("plain", "bitmap", "--merge", "other", "-b", "SAME", "IMG", "b1"),
                run("plain", "bitmap", "--merge", "other", "-b", "SAME", "-F", "qcow2", "IMG", "b2"),
                run("plain", "bitmap", "--merge", "nope", "-b", "SAME", "IMG", "b1"),
                run("plain", "bitmap", "--merge", "other", "-b", "RAW", "IMG", "b1"),
                run("plain", "bitmap", "--frob", "IMG", "b"),
                run("plain", "bitmap", "IMG", "b", "--merge"),
                run("plain", "bitmap", "IMG", "b", "-g"),
                run("plain", "bitmap", "--add", "-f", "qcow2", "IMG", "c", "--disable"),
                run("plain", "bitmap", "--add", "IMG", "c", "--disable", "--merge", "b2", "--clear", "--remove"),
                run("plain", "bitmap", "--add", "--remove", "--add", "-g", "1M", "IMG", "c"),
                run("plain", "bitmap", "--add", "--image-opts", "driver=qcow2,file.filename=IMG", "c"),
                run("plain", "bitmap", "--add", "--image-opts", "-f", "qcow2", "IMG", "c"),
                run("plain", "bitmap", "--add", "-f", "raw", "IMG", "c"),
                run("inuse", "bitmap", "--clear", "IMG", "b1"),
                run("inuse", "bitmap", "--remove", "IMG", "b1"),
                run("inuse", "bitmap", "--remove", "--remove", "IMG", "b1"),
                run("inuse", "bitmap", "--enable", "IMG", "b2"),
                run("inuse", "bitmap", "--disable", "IMG", "b2"),
                run("inuse", "bitmap", "--merge", "b2", "IMG", "b3"),
                run("inuse", "bitmap", "--add", "IMG", "new"),
                run("inuse", "bitmap", "--add", "--merge", "other", "-b", "SAME", "IMG", "new"),
                run("v2", "bitmap", "--add", "IMG", "b"),
                run("v2", "bitmap", "--remove", "IMG", "b"),
                run("raw", "bitmap", "--add", "-f", "raw", "IMG", "b"),
                run("raw", "bitmap", "--clear", "-f", "raw", "IMG", "b"));
    }

    private static Arguments run(String image, String... a) {
        return Arguments.of(image, List.of(a));
    }

    private static Path template(String name) {
        return switch (name) {
            case "plain" -> plain;
            case "inuse" -> inUse;
            case "v2" -> v2;
            case "raw" -> raw;
            default -> throw new IllegalArgumentException(name);
        };
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("bitmapRuns")
    void bitmapActsAsQemuImgDoes(String image, List<String> a) throws Exception {
        Path[] copies = runBoth(template(image), a);
        assertSameImages(copies[0], copies[1]);
    }

    // ------------------------------------------------------------------ convert --bitmaps

    static Stream<Arguments> convertRuns() {
        return Stream.of(
                run("plain", "convert", "--bitmaps", "-O", "qcow2", "IMG", "OUT"),
                run("plain", "convert", "--bitmaps", "-O", "qcow2", "-o", "cluster_size=4k", "IMG", "OUT"),
                run("plain", "convert", "--bitmaps", "-O", "qcow2", "-o", "compat=0.10", "IMG", "OUT"),
                run("plain", "convert", "--bitmaps", "-O", "raw", "IMG", "OUT"),
                run("plain", "convert", "--bitmaps", "-O", "qcow2", "IMG", "IMG", "OUT"),
                run("plain", "convert", "--skip-broken-bitmaps", "-O", "qcow2", "IMG", "OUT"),
                run("inuse", "convert", "--bitmaps", "-O", "qcow2", "IMG", "OUT"),
                run("inuse", "convert", "--bitmaps", "--skip-broken-bitmaps", "-O", "qcow2", "IMG", "OUT"),
                run("v2", "convert", "--bitmaps", "-O", "qcow2", "IMG", "OUT"),
                run("raw", "convert", "--bitmaps", "-O", "qcow2", "IMG", "OUT"));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("convertRuns")
    void convertCopiesBitmapsAsQemuImgDoes(String image, List<String> a) throws Exception {
        Path[] copies = runBoth(template(image), a);
        Path qOut = copies[0].resolveSibling("out.qcow2");
        Path jOut = copies[1].resolveSibling("out.qcow2");
        assertThat(Files.exists(jOut)).as("target made").isEqualTo(Files.exists(qOut));
        if (Files.exists(qOut) && infoJson(qOut).contains("\"qcow2\"")) {
            assertSameImages(qOut, jOut);
        }
    }

    @Test
    void convertIntoAnExistingTargetWithTheSameBitmapFailsAsQemuImgDoes() throws Exception {
        Path[] copies = runBoth(plain, List.of("convert", "-n", "--bitmaps", "-O", "qcow2", "IMG", "OUT"),
                out -> Files.copy(plain, out));
        assertSameImages(copies[0].resolveSibling("out.qcow2"), copies[1].resolveSibling("out.qcow2"));
    }

    // ------------------------------------------------------------------ info and check

    @Test
    void infoCheckAndMeasureShowBitmapsAsQemuImgDoes() {
        for (Path img : List.of(plain, inUse, same, big)) {
            for (List<String> form : List.of(args("info"), args("info", "--output=json"), args("check"),
                    args("check", "--output=json"), args("info", "-U", "--output", "human"),
                    args("measure", "-O", "qcow2"), args("measure", "--output=json", "-O", "qcow2", "-o",
                            "cluster_size=4k"))) {
                List<String> a = new ArrayList<>(form);
                a.add(img.toString());
                assertSameAsQemu(a);
            }
        }
    }

    /**
     * A seeded session of random bitmap commands (one to three actions each,
     * on a few names, some failing) and guest writes, done by qemu-img and
     * qemu-io on one copy and by jblock on another: every step prints the
     * same, and the images end up with the same bitmaps and dirty maps.
     */
    @Test
    void seededRandomBitmapSessionsMatchQemuImg() throws Exception {
        long seed = new java.util.Random().nextLong();
        System.out.println("ImgBitmapCompatTest session seed " + seed);
        java.util.Random r = new java.util.Random(seed);
        Path qd = Files.createDirectories(dir.resolve("session-q-" + System.nanoTime()));
        Path jd = Files.createDirectories(dir.resolve("session-j-" + System.nanoTime()));
        Path q = qd.resolve("s.qcow2");
        Path j = jd.resolve("s.qcow2");
        Files.copy(plain, q);
        Files.copy(plain, j);
        String[] names = {"b1", "b2", "b3", "n1", "n2"};
        String[] actions = {"--add", "--remove", "--clear", "--enable", "--disable", "--merge"};
        for (int step = 0; step < 20; step++) {
            if (r.nextInt(4) == 0) {
                long len = 1 + r.nextInt(300_000);
                long off = r.nextLong((10L << 20) - len + 1);
                List<String> w = List.of((r.nextBoolean() ? "write -z " : "write -P 5 ") + off + " " + len);
                qemuIo(q, w);
                BitmapOracle.jblockIo(j, w);
                continue;
            }
            List<String> a = new ArrayList<>(List.of("bitmap"));
            int n = 1 + r.nextInt(3);
            boolean add = false;
            for (int i = 0; i < n; i++) {
                String act = actions[r.nextInt(actions.length)];
                a.add(act);
                add |= act.equals("--add");
                if (act.equals("--merge")) {
                    a.add(names[r.nextInt(names.length)]);
                }
            }
            if (add && r.nextBoolean()) {
                a.addAll(List.of("-g", List.of("512", "4k", "64k", "1M").get(r.nextInt(4))));
            }
            a.add("IMG");
            a.add(names[r.nextInt(names.length)]);
            QemuImgOracle.Run expected = QemuImgOracle.qemu(a.stream().map(x -> x.replace("IMG", q.toString()))
                    .toList());
            QemuImgOracle.Run actual = QemuImgOracle.jblock(a.stream().map(x -> x.replace("IMG", j.toString()))
                    .toList());
            assertThat(new QemuImgOracle.Run(mask(actual.out(), jd), mask(actual.err(), jd), actual.status()))
                    .as("seed %d, step %d: %s", seed, step, a)
                    .isEqualTo(new QemuImgOracle.Run(mask(expected.out(), qd), mask(expected.err(), qd),
                            expected.status()));
        }
        assertSameImages(q, j);
    }

    // ------------------------------------------------------------------ helpers

    @FunctionalInterface
    interface Prepare {
        void target(Path out) throws Exception;
    }

    private static Path[] runBoth(Path template, List<String> a) throws Exception {
        return runBoth(template, a, out -> { });
    }

    /**
     * Runs {@code a} with qemu-img on one copy ("IMG" stands for it, "OUT"
     * for a target beside it, "SAME", "BIG", "RAW" for merge sources) and
     * with jblock on another; asserts the same output and status. Returns
     * the two copies, qemu's first.
     */
    private static Path[] runBoth(Path template, List<String> a, Prepare prepare) throws Exception {
        Path[] copies = new Path[2];
        QemuImgOracle.Run[] runs = new QemuImgOracle.Run[2];
        for (int i = 0; i < 2; i++) {
            Path d = Files.createDirectories(dir.resolve((i == 0 ? "q" : "j") + "-" + System.nanoTime()));
            Path img = d.resolve("i" + template.getFileName().toString().replaceAll("^[^.]*", ""));
            Files.copy(template, img, StandardCopyOption.REPLACE_EXISTING);
            Path out = d.resolve("out.qcow2");
            prepare.target(out);
            List<String> argv = new ArrayList<>();
            for (String s : a) {
                argv.add(s.replace("IMG", img.toString()).replace("OUT", out.toString())
                        .replace("SAME", same.toString()).replace("BIG", big.toString())
                        .replace("RAW", raw.toString()));
            }
            runs[i] = i == 0 ? QemuImgOracle.qemu(argv) : QemuImgOracle.jblock(argv);
            runs[i] = new QemuImgOracle.Run(mask(runs[i].out(), d), mask(runs[i].err(), d), runs[i].status());
            copies[i] = img;
        }
        assertThat(runs[1]).as("jblock vs qemu-img for %s", a).isEqualTo(runs[0]);
        return copies;
    }

    private static String mask(String text, Path d) {
        return text.replace(d.toString(), "DIR").replaceAll("#block\\d+", "#blockN");
    }

    /** Same info (bitmaps and their flags), same dirty maps, and jblock's copy check-clean. */
    static void assertSameImages(Path qemuCopy, Path jblockCopy) throws Exception {
        if (!infoJson(qemuCopy).contains("\"qcow2\"")) {
            return;
        }
        assertThat(infoJson(jblockCopy)).as("info of the two results").isEqualTo(infoJson(qemuCopy));
        assertCheckClean(jblockCopy);
        for (String name : bitmapNames(qemuCopy)) {
            assertThat(dirtyMap(jblockCopy, name)).as("dirty map of %s", name)
                    .isEqualTo(dirtyMap(qemuCopy, name));
        }
    }

    /** The image's bitmaps that are not in use (qemu-nbd refuses to export an inconsistent one). */
    static List<String> bitmapNames(Path img) throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(infoJson(img));
        List<String> names = new ArrayList<>();
        var bitmaps = json.path("format-specific").path("data").path("bitmaps");
        for (var b : bitmaps) {
            if (!b.get("flags").toString().contains("in-use")) {
                names.add(b.get("name").asText());
            }
        }
        return names;
    }
}
