package io.jblock.cli.img;

import io.jblock.cli.Main;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.qemuImg;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Growing a qcow2 image whose backing file is longer than its old size, as
 * QEMU 7.2's bdrv_co_truncate does it: the new area reads as zeroes, not as
 * the backing file's data (zero clusters; version 2 images, which have none,
 * are refused with QEMU's message and keep their size). Each case runs on
 * two copies, {@code resize} (or qemu-io's {@code truncate}) by each tool;
 * then the output, the map, the guest data and qemu-img's check agree.
 */
class ImgResizeOverBackingCompatTest {
    private Path dir;

    @BeforeEach
    void makeDirectory() throws Exception {
        dir = CompatSupport.freshDir();
    }

    @AfterEach
    void removeDirectory() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private static Peers.Result qemuIo(Path image, String... commands) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Peers.require("qemu-io")));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.toString());
        return Peers.run(120, cmd);
    }

    /** An 8 MiB backing file of 7s and an overlay of {@code size} over it. */
    private Path overlay(String options, String size) throws Exception {
        Path back = dir.resolve("back.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", back.toString(), "8M");
        assertThat(qemuIo(back, "write -P 7 0 8M").exit()).isZero();
        Path top = dir.resolve("top.qcow2");
        List<String> create = args("create", "-q", "-f", "qcow2", "-b", "back.qcow2", "-F", "qcow2");
        if (!options.isEmpty()) {
            create.addAll(List.of("-o", options));
        }
        create.addAll(List.of(top.toString(), size));
        qemuImg(create.toArray(new String[0]));
        return top;
    }

    /** Copies {@code top} to q/ and j/ (with the backing file), for one tool each. */
    private List<Path> copies(Path top) throws Exception {
        List<Path> out = new ArrayList<>();
        for (String d : List.of("q", "j")) {
            Path sub = Files.createDirectories(dir.resolve(d));
            Files.copy(dir.resolve("back.qcow2"), sub.resolve("back.qcow2"), StandardCopyOption.REPLACE_EXISTING);
            Path c = sub.resolve(top.getFileName());
            Files.copy(top, c, StandardCopyOption.REPLACE_EXISTING);
            out.add(c);
        }
        return out;
    }

    private static QemuImgOracle.Run unname(QemuImgOracle.Run r, Path j, Path q) {
        return new QemuImgOracle.Run(r.out().replace(j.toString(), q.toString()),
                r.err().replace(j.toString(), q.toString()), r.status());
    }

    /** Output and status of both resizes, then the map, data and check of both results. */
    private void resizeBoth(Path top, long oldSize, long newSize, String... options) throws Exception {
        resizeBoth(top, oldSize, oldSize, newSize, options);
    }

    /** As above, with the backing file's 7s showing in {@code [0, sevensUpTo)} and zeroes after. */
    private void resizeBoth(Path top, long sevensUpTo, long oldSize, long newSize, String... options)
            throws Exception {
        List<Path> c = copies(top);
        Path q = c.get(0);
        Path j = c.get(1);
        List<String> a = args("resize");
        a.addAll(List.of(options));
        List<String> qa = new ArrayList<>(a);
        qa.addAll(List.of(q.toString(), Long.toString(newSize)));
        List<String> ja = new ArrayList<>(a);
        ja.addAll(List.of(j.toString(), Long.toString(newSize)));
        QemuImgOracle.Run expected = QemuImgOracle.qemu(qa);
        assertThat(unname(QemuImgOracle.jblock(ja), j, q)).as("resize %s", a).isEqualTo(expected);
        sameResult(q, j, expected.status() == 0 ? sevensUpTo : -1, expected.status() == 0 ? newSize : oldSize);
    }

    /**
     * Both images read the same, as qemu-io sees them: {@code [0, oldSize)}
     * from the backing file, the rest (when grown) as zeroes.
     */
    private void sameResult(Path q, Path j, long grownFrom, long size) throws Exception {
        QemuImgOracle.Run qInfo = QemuImgOracle.qemu(args("info", "--output=json", q.toString()));
        QemuImgOracle.Run jInfo = QemuImgOracle.qemu(args("info", "--output=json", j.toString()));
        assertThat(jInfo.out()).contains("\"virtual-size\": " + size);
        assertThat(qInfo.out()).contains("\"virtual-size\": " + size);
        if (grownFrom >= 0) {
            Peers.Result read = qemuIo(j, "read -P 7 0 " + grownFrom,
                    "read -P 0 " + grownFrom + " " + (size - grownFrom));
            assertThat(read.out()).as("qemu-io on jblock's result: %s", read.out()).doesNotContain("fail");
        }
        QemuImgOracle.Run qMap = QemuImgOracle.qemu(args("map", "--output=json", q.toString()));
        QemuImgOracle.Run jMap = QemuImgOracle.qemu(args("map", "--output=json", j.toString()));
        assertThat(jMap.out()).as("map").isEqualTo(qMap.out());
        assertThat(QemuImgOracle.qemu(args("compare", q.toString(), j.toString())).status()).isZero();
        assertThat(QemuImgOracle.qemu(args("check", j.toString())).status()).isZero();
    }

    @ParameterizedTest(name = "old size {0}")
    @ValueSource(longs = {3145728, 3000320, 512, 0})
    void theGrownAreaReadsAsZeroesNotAsTheBackingFile(long oldSize) throws Exception {
        resizeBoth(overlay("", Long.toString(oldSize)), oldSize, 6 << 20);
    }

    @Test
    void growingPastTheBackingFileToo() throws Exception {
        resizeBoth(overlay("", "3M"), 3 << 20, 12 << 20);
    }

    @Test
    void withSubclusters() throws Exception {
        resizeBoth(overlay("extended_l2=on", "3000320"), 3000320, 6 << 20);
    }

    @Test
    void aShorterBackingFileNeedsNothing() throws Exception {
        Path top = overlay("", "3M");
        qemuImg("resize", top.toString(), "10M");
        resizeBoth(top, 3 << 20, 10 << 20, 12 << 20);
    }

    @Test
    void afterAShrinkTheBackingFileIsLongerAgain() throws Exception {
        Path top = overlay("", "8M");
        assertThat(qemuIo(top, "write -P 9 1M 64k").exit()).isZero();
        qemuImg("resize", "--shrink", top.toString(), "2M");
        List<Path> c = copies(top);
        qemuImg("resize", c.get(0).toString(), "5M");
        assertThat(QemuImgOracle.jblock(args("resize", c.get(1).toString(), "5M")).status()).isZero();
        assertThat(qemuIo(c.get(1), "read -P 7 0 1M", "read -P 9 1M 64k", "read -P 0 2M 3M").out())
                .doesNotContain("fail");
        assertThat(QemuImgOracle.qemu(args("compare", c.get(0).toString(), c.get(1).toString())).status()).isZero();
    }

    @Test
    void version2ImagesAreRefusedAndKeepTheirSize() throws Exception {
        resizeBoth(overlay("compat=0.10", "3M"), 3 << 20, 6 << 20);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"metadata", "falloc", "full"})
    void preallocatedGrowthKeepsTheOldTailAndReadsZeroesAfterIt(String prealloc) throws Exception {
        Path top = overlay("", "3000320");
        List<Path> c = copies(top);
        qemuImg("resize", "--preallocation=" + prealloc, c.get(0).toString(), "6M");
        assertThat(QemuImgOracle.jblock(args("resize", "--preallocation=" + prealloc, c.get(1).toString(), "6M"))
                .status()).isZero();
        Peers.Result read = qemuIo(c.get(1), "read -P 7 0 3000320", "read -P 0 3000320 3291136");
        assertThat(read.out()).as("%s", read.out()).doesNotContain("fail");
        assertThat(QemuImgOracle.qemu(args("compare", c.get(0).toString(), c.get(1).toString())).status()).isZero();
        assertThat(QemuImgOracle.qemu(args("check", c.get(1).toString())).status()).isZero();
    }

    @Test
    void qemuIoTruncateGrowsTheSameWay() throws Exception {
        Path top = overlay("", "3000320");
        List<Path> c = copies(top);
        Peers.Result q = qemuIo(c.get(0), "truncate 6M", "read -P 0 3000320 3291136");
        assertThat(q.exit()).isZero();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Main.run("qemu-io", new String[] {"-c", "truncate 6M", c.get(1).toString()},
                    new ByteArrayInputStream(new byte[0]), o, e);
        }
        assertThat(status).as("%s %s", out, err).isZero();
        sameResult(c.get(0), c.get(1), 3000320, 6 << 20);
    }
}
