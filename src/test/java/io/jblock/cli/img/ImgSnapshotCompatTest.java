package io.jblock.cli.img;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code snapshot} against qemu-img 7.2: each command runs on a fresh copy
 * of the same image with both tools, and must print the same (dates of new
 * snapshots masked), exit the same, and leave an image that qemu-img lists,
 * checks and reads the same. Covers listing, creating (duplicate names, ids
 * as names, long and empty names), applying and deleting by name and by id,
 * every option error, raw images, 1-bit refcounts and version 2 images.
 */
class ImgSnapshotCompatTest {
    private static final String DATE = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d";
    private static Path dir;
    private static Path v3;
    private static Path v2;
    private static Path oneBit;
    private static Path empty;
    private static Path raw;

    @BeforeAll
    static void makeImages() throws Exception {
        dir = CompatSupport.freshDir();
        v3 = template("v3.qcow2", "cluster_size=4k");
        v2 = template("v2.qcow2", "compat=0.10,cluster_size=4k");
        oneBit = dir.resolve("onebit.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "refcount_bits=1", oneBit.toString(), "4M");
        qemuIo(oneBit, "write -P 1 0 64k");
        empty = dir.resolve("empty.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", empty.toString(), "4M");
        raw = dir.resolve("raw.img");
        qemuImg("create", "-q", "-f", "raw", raw.toString(), "4M");
    }

    /** Data, then snapshots "s1", "s1" again, "1" (so ids and names collide), with writes between them. */
    private static Path template(String name, String options) throws Exception {
        Path p = dir.resolve(name);
        qemuImg("create", "-q", "-f", "qcow2", "-o", options, p.toString(), "4M");
        qemuIo(p, "write -P 1 0 1M");
        qemuImg("snapshot", "-c", "s1", p.toString());
        qemuIo(p, "write -P 2 64k 64k");
        qemuImg("snapshot", "-c", "s1", p.toString());
        qemuIo(p, "write -P 3 1M 8k");
        qemuImg("snapshot", "-c", "1", p.toString());
        qemuIo(p, "write -z 0 4k");
        return p;
    }

    @AfterAll
    static void removeImages() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    @Test
    void listing() throws Exception {
        same(v3, "snapshot", "-l", "IMG");
        same(v3, "snapshot", "-q", "-l", "IMG");
        same(v3, "snapshot", "-U", "-l", "IMG");
        same(v2, "snapshot", "-l", "IMG");
        same(empty, "snapshot", "-l", "IMG");
        same(v3, "snapshot", "IMG");
        same(v3, "snapshot", "--image-opts", "-l", "driver=qcow2,file.filename=IMG");
    }

    /** info lists the snapshots too, in its human text and in its JSON. */
    @Test
    void infoListsSnapshots() throws Exception {
        for (Path t : List.of(v3, v2, empty)) {
            same(t, "info", "IMG");
            same(t, "info", "--output=json", "IMG");
        }
    }

    @Test
    void creating() throws Exception {
        for (Path t : List.of(v3, v2, empty)) {
            same(t, "snapshot", "-c", "new", "IMG");
            same(t, "snapshot", "-c", "s1", "IMG");
            same(t, "snapshot", "-c", "2", "IMG");
            same(t, "snapshot", "-q", "-c", "", "IMG");
        }
        same(v3, "snapshot", "-c", "x".repeat(300), "IMG");
        same(oneBit, "snapshot", "-c", "s", "IMG");
    }

    @Test
    void applyingAndDeleting() throws Exception {
        for (Path t : List.of(v3, v2)) {
            for (String key : List.of("s1", "1", "2", "3", "nope")) {
                same(t, "snapshot", "-a", key, "IMG");
                same(t, "snapshot", "-d", key, "IMG");
            }
        }
    }

    @Test
    void optionErrors() throws Exception {
        same(v3, "snapshot", "-l", "-c", "x", "IMG");
        same(v3, "snapshot", "-a", "s1", "-d", "s1", "IMG");
        same(v3, "snapshot", "-x", "IMG");
        same(v3, "snapshot", "-f", "qcow2", "-l", "IMG");
        same(v3, "snapshot", "-c", "x", "IMG", "extra");
        same(v3, "snapshot", "-l");
        same(v3, "snapshot", "-c");
        same(v3, "snapshot", "-U", "-c", "x", "IMG");
        same(v3, "snapshot", "-l", dir.resolve("missing.qcow2").toString());
    }

    @Test
    void rawImages() throws Exception {
        for (String[] a : new String[][] {{"-l"}, {"-c", "x"}, {"-a", "x"}, {"-d", "x"}}) {
            List<String> args = new ArrayList<>(List.of("snapshot"));
            args.addAll(List.of(a));
            args.add("IMG");
            same(raw, args.toArray(new String[0]));
        }
    }

    /** convert -l reads a snapshot without applying it (bdrv_snapshot_load_tmp), in both forms of -l. */
    @Test
    void convertReadsASnapshot() throws Exception {
        Path out = dir.resolve("out.raw");
        for (Path t : List.of(v3, v2)) {
            for (String l : List.of("snapshot.name=s1", "snapshot.id=1", "snapshot.id=2", "snapshot.id=3",
                    "snapshot.id=2,snapshot.name=s1", "snapshot.id=1,snapshot.name=1", "snapshot.foo=1",
                    "snapshot.name=nope", "snapshot.name", "s1", "1", "2", "3", "nope")) {
                Files.deleteIfExists(out);
                QemuImgOracle.Run expected = QemuImgOracle.qemu(List.of("convert", "-l", l, "-O", "raw",
                        t.toString(), out.toString()));
                byte[] expectedBytes = Files.exists(out) ? Files.readAllBytes(out) : null;
                Files.deleteIfExists(out);
                QemuImgOracle.Run actual = QemuImgOracle.jblock(List.of("convert", "-l", l, "-O", "raw",
                        t.toString(), out.toString()));
                byte[] actualBytes = Files.exists(out) ? Files.readAllBytes(out) : null;
                assertThat(actual).as("convert -l %s of %s", l, t).isEqualTo(expected);
                assertThat(actualBytes).as("bytes of convert -l %s of %s", l, t).isEqualTo(expectedBytes);
            }
        }
        same(v3, "convert", "-l", "s1", "IMG", "IMG", out.toString());
        for (String l : List.of("snapshot.name=s1", "snapshot.id=2", "1", "s1", "nope", "snapshot.foo=1")) {
            for (String output : List.of("human", "json")) {
                same(v3, "measure", "-O", "qcow2", "--output=" + output, "-l", l, "IMG");
            }
        }
        same(raw, "measure", "-f", "raw", "-l", "s1", "IMG");
        same(raw, "convert", "-f", "raw", "-l", "s1", "IMG", out.toString());
    }

    /**
     * Runs the command on a copy of {@code template} at the same path with
     * each tool; asserts the same output and status, and the same image after
     * (listing, check, and the active layer's bytes).
     */
    private static void same(Path template, String... args) throws Exception {
        Path img = dir.resolve("img" + extension(template));
        List<String> a = new ArrayList<>();
        for (String s : args) {
            a.add(s.replace("IMG", img.toString()));
        }
        Files.copy(template, img, StandardCopyOption.REPLACE_EXISTING);
        QemuImgOracle.Run expected = masked(QemuImgOracle.qemu(a));
        String expectedImage = state(img);
        Files.copy(template, img, StandardCopyOption.REPLACE_EXISTING);
        QemuImgOracle.Run actual = masked(QemuImgOracle.jblock(a));
        String actualImage = state(img);
        assertThat(actual).as("jblock vs qemu-img for %s", a).isEqualTo(expected);
        assertThat(actualImage).as("image left by %s", a).isEqualTo(expectedImage);
    }

    private static String extension(Path p) {
        String n = p.getFileName().toString();
        return n.substring(n.lastIndexOf('.'));
    }

    private static QemuImgOracle.Run masked(QemuImgOracle.Run r) {
        return new QemuImgOracle.Run(r.out().replaceAll(DATE, "DATE"), r.err(), r.status());
    }

    /** What qemu-img sees: the snapshot list, the check report, a digest of the active layer. */
    private static String state(Path img) throws Exception {
        String fmt = img.toString().endsWith(".img") ? "raw" : "qcow2";
        String list = qemuImg("snapshot", "-l", img.toString()).out().replaceAll(DATE, "DATE");
        Peers.Result check = Peers.run(60, List.of(Peers.require("qemu-img"), "check", "-f", fmt, img.toString()));
        Path out = dir.resolve("active.raw");
        qemuImg("convert", "-f", fmt, "-O", "raw", img.toString(), out.toString());
        byte[] bytes = Files.readAllBytes(out);
        String digest = java.util.HexFormat.of().formatHex(
                java.security.MessageDigest.getInstance("SHA-256").digest(bytes));
        String info = qemuImg("info", "-f", fmt, img.toString()).out().replaceAll(DATE, "DATE")
                .replaceAll("disk size: .*\n", "").replaceAll("Image end offset: .*\n", "");
        return list + "\n--- check " + check.exit() + "\n" + check.out().replaceAll("Image end offset: .*\n", "")
                + check.err() + "\n--- active " + bytes.length + " " + digest + "\n--- info\n" + info;
    }

    private static Peers.Result qemuImg(String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Peers.require("qemu-img"));
        cmd.addAll(List.of(args));
        return Peers.run(120, cmd).ok();
    }

    private static void qemuIo(Path img, String command) throws Exception {
        Peers.run(120, List.of(Peers.require("qemu-io"), "-f", "qcow2", "-c", command, img.toString())).ok();
    }
}
