package io.jblock.cli.img;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static io.jblock.cli.img.CompatSupport.args;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code bench} against qemu-img: the same output (the run's duration
 * masked), messages and exit status for valid and invalid command lines, and
 * the same image contents after write runs with a pattern. Timings are never
 * asserted.
 */
class ImgBenchCompatTest {
    private static final String DURATION = "Run completed in \\d+\\.\\d{3} seconds\\.";
    private static final long SIZE = 4L << 20;
    private Path dir;
    private String image;

    @BeforeEach
    void makeImage() throws Exception {
        dir = CompatSupport.freshDir();
        image = dir.resolve("b.raw").toString();
        fill(Path.of(image), SIZE, 1);
    }

    @AfterEach
    void removeDirectory() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    /** A file of {@code size} bytes whose every 512-byte block holds its own number (so reads see data). */
    private static void fill(Path p, long size, int seed) throws Exception {
        byte[] data = new byte[(int) size];
        new Random(seed).nextBytes(data);
        Files.write(p, data);
    }

    static Stream<String> invalidCommandLines() {
        return Stream.of("extra", "-c", "-x", "--bogus", "--object foo", "-c abc", "-c -1", "-c 2147483648", "-c 1x",
                "-d abc", "-d -5", "-d 2147483648", "-o -1", "-o 1x", "-o 16E", "-s abc", "-s 2147483648",
                "-s 2G", "-S abc", "-S -1", "-S 3G", "-t bogus", "-t volatile", "-i bogus", "-i Threads",
                "--pattern 256", "--pattern x", "--pattern -1", "--pattern", "--flush-interval 10",
                "-w --flush-interval 3 -d 4", "-w --flush-interval abc", "-c 3 -i native", "-n -c 3",
                "-n -c 3 -t writeback", "--image-opts -f raw", "-d 4 -o 4194304 -c 3", "-d 4 -o 4194304 -c 3 -w",
                "-s 4097 -o 4192000 -c 1", "--flush-interval", "--no-drain x y", "-U -w -c 1");
    }

    @ParameterizedTest
    @MethodSource("invalidCommandLines")
    void invalidCommandLinesFailAsQemuImgDoes(String options) {
        List<String> a = commandLine(options);
        QemuImgOracle.Run expected = masked(QemuImgOracle.qemu(a));
        QemuImgOracle.Run actual = masked(QemuImgOracle.jblock(a));
        assertThat(expected.status()).as("qemu-img fails on %s", a).isNotZero();
        assertThat(actual).as("jblock vs qemu-img for %s", a).isEqualTo(expected);
    }

    @Test
    void noImageNameFailsAsQemuImgDoes() {
        for (List<String> a : List.of(args("bench"), args("bench", "-c", "1"), args("bench", "-w", "--"))) {
            QemuImgOracle.Run expected = QemuImgOracle.qemu(a);
            assertThat(expected.status()).isNotZero();
            assertThat(QemuImgOracle.jblock(a)).as("jblock vs qemu-img for %s", a).isEqualTo(expected);
        }
    }

    @Test
    void missingOrUnopenableImagesFailAsQemuImgDoes() {
        String missing = dir.resolve("missing.raw").toString();
        for (List<String> a : List.of(args("bench", missing), args("bench", "-w", "-f", "raw", missing),
                args("bench", "-f", "qcow2", image), args("bench", "-f", "nosuch", image),
                args("bench", dir.toString()))) {
            QemuImgOracle.Run expected = QemuImgOracle.qemu(a);
            assertThat(expected.status()).isNotZero();
            assertThat(QemuImgOracle.jblock(a)).as("jblock vs qemu-img for %s", a).isEqualTo(expected);
        }
    }

    static Stream<String> validCommandLines() {
        return Stream.of("-c 100", "-c 0", "-c 0x10", "-c 010 -d 0x4", "-c 50 -d 1", "-c 100 -s 1k -S 8k",
                "-c 100 -s 1000", "-c 3 -s 0", "-c 20 -o 4190208", "-c 20 -o 4190208 -S 4096 -s 512",
                "-c 100 -t none", "-c 100 -t off -i native", "-c 100 -n -t none", "-c 100 -t directsync -s 1000",
                "-c 100 -t unsafe", "-c 100 -t writethrough -i io_uring", "-c 100 -i threads", "-q -c 10",
                "-U -c 10", "--force-share -c 10", "-c 0 -d 0", "-c 64 -d 64 -w", "-c 100 -w -d 4 --flush-interval 10",
                "-c 100 -w -d 4 --flush-interval=10 --no-drain", "-c 100 -w --no-drain", "-c 100 -w --flush-interval 0",
                "-c 100 -w -t none -i io_uring -d 8 --flush-interval 8",
                "-c 40 -w --pattern 0xa5 -s 3000 -S 5000 -o 777", "-c 10 -w -t directsync --pattern 7",
                "--image-opts -c 5 driver=raw,file.filename=IMAGE");
    }

    @ParameterizedTest
    @MethodSource("validCommandLines")
    void validCommandLinesPrintWhatQemuImgPrints(String options) throws Exception {
        List<String> a = commandLine(options);
        QemuImgOracle.Run expected = masked(QemuImgOracle.qemu(a));
        byte[] qemuImage = Files.readAllBytes(Path.of(image));
        fill(Path.of(image), SIZE, 1);
        QemuImgOracle.Run actual = masked(QemuImgOracle.jblock(a));
        assertThat(expected.status()).as("qemu-img succeeds on %s: %s", a, expected).isZero();
        assertThat(actual).as("jblock vs qemu-img for %s", a).isEqualTo(expected);
        assertSameBytes(Files.readAllBytes(Path.of(image)), qemuImage, "image after " + a);
    }

    /** Without -f, a write run on a probed raw image draws QEMU's warning (and writes all the same). */
    @Test
    void probedRawWriteWarnsAsQemuImgDoes() throws Exception {
        List<String> a = args("bench", "-c", "5", "-w", "--pattern", "3", "-o", "8192", image);
        QemuImgOracle.Run expected = masked(QemuImgOracle.qemu(a));
        byte[] qemuImage = Files.readAllBytes(Path.of(image));
        fill(Path.of(image), SIZE, 1);
        QemuImgOracle.Run actual = masked(QemuImgOracle.jblock(a));
        assertThat(actual).isEqualTo(expected);
        assertSameBytes(Files.readAllBytes(Path.of(image)), qemuImage, "image after " + a);
    }

    /**
     * Random write runs: the image afterwards equals qemu-img's, byte for byte
     * (offsets wrap at the end of the image, the pattern fills every request).
     */
    @Test
    void randomWriteRunsLeaveTheImageQemuImgLeaves() throws Exception {
        long seed = System.nanoTime();
        System.out.println("ImgBenchCompatTest seed " + seed);
        Random r = new Random(seed);
        for (int i = 0; i < 12; i++) {
            int depth = 1 + r.nextInt(16);
            // Mostly requests that never cross the end of the image (4k-aligned offsets and steps, at most
            // 4k long): a failed request stops both tools with a timing-dependent part written.
            boolean aligned = r.nextInt(3) != 0;
            int size = aligned ? 1 + r.nextInt(4096) : 1 + r.nextInt(9000);
            int step = aligned ? 4096 * r.nextInt(50) : r.nextInt(3) == 0 ? 0 : r.nextInt(200000);
            long offset = aligned ? 4096L * r.nextInt((int) (SIZE / 4096)) : r.nextInt((int) SIZE);
            List<String> a = args("bench", "-f", "raw", "-w", "-c", String.valueOf(r.nextInt(300)),
                    "-d", String.valueOf(depth), "-s", String.valueOf(size), "-S", String.valueOf(step),
                    "-o", String.valueOf(offset), "--pattern", String.valueOf(r.nextInt(256)),
                    "-t", List.of("writeback", "none", "unsafe", "writethrough", "directsync").get(r.nextInt(5)),
                    "-i", List.of("threads", "io_uring").get(r.nextInt(2)));
            if (r.nextBoolean()) {
                a.addAll(List.of("--flush-interval", String.valueOf(depth + r.nextInt(40))));
                if (r.nextBoolean()) {
                    a.add("--no-drain");
                }
            }
            a.add(image);
            fill(Path.of(image), SIZE, i);
            QemuImgOracle.Run expected = masked(QemuImgOracle.qemu(a));
            byte[] qemuImage = Files.readAllBytes(Path.of(image));
            fill(Path.of(image), SIZE, i);
            QemuImgOracle.Run actual = masked(QemuImgOracle.jblock(a));
            assertThat(actual).as("seed %d: jblock vs qemu-img for %s", seed, a).isEqualTo(expected);
            if (expected.status() == 0) {
                assertSameBytes(Files.readAllBytes(Path.of(image)), qemuImage, "seed " + seed + ": image after " + a);
            }
        }
    }

    /** An image that does not end on a sector: the last requests cross its end in both tools. */
    @Test
    void imageNotAMultipleOfTheSectorSize() throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(image, "rw")) {
            f.setLength(10_000);
        }
        byte[] before = Files.readAllBytes(Path.of(image));
        for (String options : List.of("-c 3 -s 512", "-c 30 -s 512 -o 9000", "-c 3 -s 4096 -o 8192")) {
            List<String> a = commandLine(options);
            QemuImgOracle.Run expected = masked(QemuImgOracle.qemu(a));
            QemuImgOracle.Run actual = masked(QemuImgOracle.jblock(a));
            assertThat(actual).as("jblock vs qemu-img for %s", a).isEqualTo(expected);
            assertThat(Files.readAllBytes(Path.of(image))).isEqualTo(before);
        }
    }

    /** qemu-img 7.2 dies of SIGFPE on an empty image; jblock fails the first request instead. */
    @Test
    void emptyImageFailsTheFirstRequest() throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(image, "rw")) {
            f.setLength(0);
        }
        QemuImgOracle.Run actual = QemuImgOracle.jblock(commandLine("-c 5"));
        assertThat(actual.status()).isEqualTo(1);
        assertThat(actual.err()).isEqualTo("qemu-img: Failed request: Input/output error\n");
    }

    /** qemu-img 7.2 waits forever with a depth of 0 and requests to send; jblock refuses the depth. */
    @Test
    void depthZeroWithRequestsIsRefused() {
        QemuImgOracle.Run actual = QemuImgOracle.jblock(commandLine("-c 5 -d 0"));
        assertThat(actual.status()).isEqualTo(1);
        assertThat(actual.err()).isEqualTo("qemu-img: Invalid queue depth specified\n");
    }

    /** "bench -f raw OPTIONS IMAGE", IMAGE replaced where the options name it (--image-opts). */
    private List<String> commandLine(String options) {
        List<String> a = args("bench");
        boolean named = options.contains("IMAGE");
        if (!options.contains("--image-opts")) {
            a.addAll(List.of("-f", "raw"));
        }
        for (String w : options.split(" ")) {
            if (!w.isEmpty()) {
                a.add(w.replace("IMAGE", image));
            }
        }
        if (!named) {
            a.add(image);
        }
        return a;
    }

    /** Equal images, or the first offset where they differ (not megabytes of bytes). */
    private static void assertSameBytes(byte[] actual, byte[] expected, String what) {
        assertThat(actual.length).as("length of the %s", what).isEqualTo(expected.length);
        int at = java.util.Arrays.mismatch(actual, expected);
        assertThat(at).as("first differing offset of the %s", what).isEqualTo(-1);
    }

    private static QemuImgOracle.Run masked(QemuImgOracle.Run run) {
        return new QemuImgOracle.Run(run.out().replaceAll(DURATION, "Run completed in <masked> seconds."),
                run.err(), run.status());
    }
}
