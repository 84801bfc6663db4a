package io.jblock.cli.img;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.qemuImg;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code info} of images with backing files against qemu-img: the backing
 * lines and JSON fields, plain info opening without the backing file (a
 * missing one is fine), and --backing-chain following the chain with QEMU's
 * errors for a missing file, a loop and a name it cannot make absolute.
 */
class ImgInfoBackingCompatTest {
    /** The qcow2 header extension that records the backing file's format. */
    private static final int BACKING_FORMAT_EXTENSION = 0xE2792ACA;

    private Path dir;

    @BeforeEach
    void makeDirectory() throws Exception {
        dir = CompatSupport.freshDir();
    }

    @AfterEach
    void removeDirectory() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    /** info in human and JSON, with and without --backing-chain and -U, of {@code name}. */
    private static void allFormsSame(String name, String... extra) {
        for (List<String> form : List.of(args(), args("--output=json"), args("--backing-chain"),
                args("--backing-chain", "--output=json"), args("-U", "--backing-chain"),
                args("--force-share", "--output=json", "--backing-chain"))) {
            List<String> a = args("info");
            a.addAll(form);
            a.addAll(List.of(extra));
            a.add(name);
            assertSameAsQemu(a);
        }
    }

    /** base.raw in sub, mid.qcow2 over it, top.qcow2 over mid: relative names beside each image. */
    private Path threeDeep() {
        Path sub = dir.resolve("sub");
        qemuImg("create", "-q", "-f", "raw", sub.resolve("base.raw").toString(), "1M");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", sub.resolve("mid.qcow2").toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", sub.resolve("top.qcow2").toString());
        return sub.resolve("top.qcow2");
    }

    @Test
    void threeDeepChainEveryWayOfNamingTheTop() throws Exception {
        Files.createDirectories(dir.resolve("sub"));
        Path top = threeDeep();
        String n = top.toString();
        allFormsSame(n);
        allFormsSame(top.toAbsolutePath().toString());
        allFormsSame("file:" + n);
        allFormsSame("./" + n);
        allFormsSame("blkdebug::" + n);
        allFormsSame("json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"" + n + "\"}}");
        allFormsSame(n, "-f", "qcow2");
        allFormsSame("driver=qcow2,file.filename=" + n, "--image-opts");
        allFormsSame("file.filename=" + n, "--image-opts");
        // The mid image alone: a two-deep chain, qcow2 over raw.
        allFormsSame(dir.resolve("sub/mid.qcow2").toString());
        // -f raw on the top: a raw image has no backing file to show.
        allFormsSame(n, "-f", "raw");
    }

    @Test
    void relativeNamesWithFoldersAndAbsoluteNames() throws Exception {
        Path sub = Files.createDirectories(dir.resolve("a/b"));
        qemuImg("create", "-q", "-f", "qcow2", sub.resolve("base.qcow2").toString(), "1M");
        // Names with folders, resolved beside the image (not normalised): "b/base", "../a/b/base".
        qemuImg("create", "-q", "-f", "qcow2", "-b", "b/base.qcow2", "-F", "qcow2", dir.resolve("a/t1.qcow2").toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "../a/b/base.qcow2", "-F", "qcow2",
                dir.resolve("a/t2.qcow2").toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", sub.resolve("base.qcow2").toAbsolutePath().toString(), "-F",
                "qcow2", dir.resolve("t3.qcow2").toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "../t1.qcow2", "-F", "qcow2", sub.resolve("t4.qcow2").toString());
        for (String t : List.of("a/t1.qcow2", "a/t2.qcow2", "t3.qcow2", "a/b/t4.qcow2")) {
            allFormsSame(dir.resolve(t).toString());
            allFormsSame(dir.resolve(t).toAbsolutePath().toString());
        }
    }

    @Test
    void jsonAndProtocolBackingNames() throws Exception {
        Path base = dir.resolve("base.raw");
        qemuImg("create", "-q", "-f", "raw", base.toString(), "1M");
        qemuImg("create", "-q", "-f", "qcow2", "-b",
                "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"" + base + "\"}}", "-F", "raw",
                dir.resolve("j.qcow2").toString(), "1M");
        allFormsSame(dir.resolve("j.qcow2").toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "file:" + base.toAbsolutePath(), "-F", "raw",
                dir.resolve("f.qcow2").toString(), "1M");
        allFormsSame(dir.resolve("f.qcow2").toString());
    }

    @Test
    void missingBackingFileIsFineUntilTheChainReachesIt() throws Exception {
        Path top = dir.resolve("top.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", top.toString(), "1M");
        allFormsSame(top.toString());
        // Missing one level down.
        Path over = dir.resolve("over.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-u", "-b", "top.qcow2", "-F", "qcow2", over.toString(), "1M");
        allFormsSame(over.toString());
        QemuImgOracle.Run r = assertSameAsQemu(args("info", "--backing-chain", over.toString()));
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).contains("gone.qcow2").contains("No such file or directory");
        assertThat(r.out()).isEmpty();
        // Plain info of the top succeeds without its backing file.
        QemuImgOracle.Run plain = assertSameAsQemu(args("info", top.toString()));
        assertThat(plain.status()).isZero();
        assertThat(plain.out()).contains("backing file: gone.qcow2 (actual path: " + dir.resolve("gone.qcow2") + ")\n");
    }

    @Test
    void backingFileWithoutRecordedFormatIsProbedInTheChain() throws Exception {
        Path base = dir.resolve("base.raw");
        qemuImg("create", "-q", "-f", "raw", base.toString(), "1M");
        Path mid = dir.resolve("mid.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", mid.toString(), "1M");
        Path top = dir.resolve("top.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top.toString(), "1M");
        dropBackingFormat(top);
        allFormsSame(top.toString());
        qemuImg("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top.toString(), "1M");
        dropBackingFormat(top);
        allFormsSame(top.toString());
        QemuImgOracle.Run r = assertSameAsQemu(args("info", top.toString()));
        assertThat(r.out()).contains("backing file: mid.qcow2").doesNotContain("backing file format");
    }

    @Test
    void loopsAreReportedWithQemusMessage() throws Exception {
        Path a = dir.resolve("a.qcow2");
        Path b = dir.resolve("b.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", a.toString(), "1M");
        qemuImg("create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", b.toString(), "1M");
        allFormsSame(a.toString());
        allFormsSame(a.toAbsolutePath().toString());
        QemuImgOracle.Run r = assertSameAsQemu(args("info", "--backing-chain", a.toString()));
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("qemu-img: Backing file '" + a + "' creates an infinite loop.\n");
        // An image that is its own backing file (rebase -u writes the name as given).
        Path self = dir.resolve("self.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", self.toString(), "1M");
        qemuImg("rebase", "-u", "-b", "self.qcow2", "-F", "qcow2", self.toString());
        allFormsSame(self.toString());
    }

    /**
     * A loop named differently at every step ("../d/x" from d/x): QEMU
     * compares names only, so it opens "d/../d/../d/x"... until the name is
     * too long for the system; jblock stops at the first host file it has
     * opened before, with the loop message.
     */
    @Test
    void aLoopSpelledDifferentlyEachTimeStopsAtOnce() throws Exception {
        Path d = Files.createDirectories(dir.resolve("d"));
        Path x = d.resolve("x.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-u", "-b", "../d/x.qcow2", "-F", "qcow2", x.toString(), "1M");
        QemuImgOracle.Run q = QemuImgOracle.qemu(args("info", "--backing-chain", x.toString()));
        assertThat(q.status()).isEqualTo(1);
        assertThat(q.err()).contains("File name too long");
        QemuImgOracle.Run r = QemuImgOracle.jblock(args("info", "--backing-chain", x.toString()));
        assertThat(r).isEqualTo(new QemuImgOracle.Run("", "qemu-img: Backing file '" + d + "/../d/x.qcow2'"
                + " creates an infinite loop.\n", 1));
        // Without the chain, as QEMU.
        assertSameAsQemu(args("info", x.toString()));
        assertSameAsQemu(args("info", "--output=json", x.toString()));
    }

    @Test
    void dataFileImagesWithBackingFiles() throws Exception {
        Path base = dir.resolve("base.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", base.toString(), "1M");
        Path top = dir.resolve("top.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "data_file=" + dir.resolve("top.data"), "-b", "base.qcow2",
                "-F", "qcow2", top.toString());
        allFormsSame(top.toString());
        Path raw = dir.resolve("raw.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "data_file=" + dir.resolve("raw.data") + ",data_file_raw=on",
                raw.toString(), "1M");
        allFormsSame(raw.toString());
    }

    @Test
    void backingOptionsUnderNoBackingAreRefusedAsQemuDoes() throws Exception {
        Files.createDirectories(dir.resolve("sub"));
        Path top = threeDeep();
        for (String form : List.of("", "--backing-chain")) {
            List<String> a = args("info", "--image-opts");
            if (!form.isEmpty()) {
                a.add(form);
            }
            a.add("driver=qcow2,file.filename=" + top + ",backing.driver=qcow2");
            QemuImgOracle.Run r = assertSameAsQemu(a);
            assertThat(r.err()).contains("does not support the option 'backing.driver'");
        }
        assertSameAsQemu(args("info", "--backing-chain",
                "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"" + top + "\"},\"backing\":null}"));
    }

    /** Renames the backing-format header extension to an unknown one, which QEMU and jblock skip. */
    private static void dropBackingFormat(Path image) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.seek(100);
            long at = f.readInt(); // header_length (version 3)
            while (true) {
                f.seek(at);
                int type = f.readInt();
                int length = f.readInt();
                if (type == 0) {
                    throw new AssertionError("no backing format extension in " + image);
                }
                if (type == BACKING_FORMAT_EXTENSION) {
                    f.seek(at);
                    f.writeInt(0x6a626c6b);
                    return;
                }
                at += 8 + (length + 7L) / 8 * 8;
            }
        }
    }
}
