package io.jblock.cli.img;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.stream.Stream;

import static io.jblock.cli.img.BitmapOracle.qemuImg;
import static io.jblock.cli.img.BitmapOracle.qemuIo;
import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Images whose bitmaps extension, directory or tables were damaged: every
 * field QEMU's bitmap_list_load, check_dir_entry and bitmap_table_load
 * check. {@code info}, {@code check} and a read-write {@code bitmap} must
 * fail (or work) as qemu-img 7.2's do, with the same messages.
 */
class Qcow2BitmapDamageCompatTest {
    private static Path dir;
    private static Path template;

    @BeforeAll
    static void makeImage() throws Exception {
        dir = CompatSupport.freshDir();
        template = dir.resolve("t.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", template.toString(), "10M");
        qemuImg("bitmap", "--add", template.toString(), "b1");
        qemuImg("bitmap", "--add", "-g", "4k", template.toString(), "b2");
        qemuIo(template, List.of("write 0 64k", "write 9M 4k"));
    }

    @AfterAll
    static void removeImage() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    /** Where the extension and directory are: {extension data offset, directory offset, directory size}. */
    private static long[] locate(FileChannel ch) throws Exception {
        ByteBuffer h = ByteBuffer.allocate(65536);
        ch.read(h, 0);
        int at = h.getInt(100);
        while (true) {
            int type = h.getInt(at);
            int len = h.getInt(at + 4);
            if (type == 0x23852875) {
                return new long[] {at + 8, h.getLong(at + 8 + 16), h.getLong(at + 8 + 8)};
            }
            if (type == 0) {
                throw new AssertionError("no bitmaps extension");
            }
            at += 8 + ((len + 7) & ~7);
        }
    }

    /** One way of damaging the image: patches at an offset relative to a place. */
    private record Damage(String name, String where, int offset, long value, int width) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> damages() {
        return Stream.of(
                d("directory count one more", "ext", 0, 3, 4),
                d("directory count one less", "ext", 0, 1, 4),
                d("directory size zero", "ext", 8, 0, 8),
                d("directory size 8", "ext", 8, 8, 8),
                d("directory size too big", "ext", 8, 1024L * 65536 + 8, 8),
                d("directory offset unaligned", "ext", 16, 0x10200, 8),
                d("directory past the end of the file", "ext", 16, 1L << 40, 8),
                d("reserved flag", "entry", 12, 0x6, 4),
                d("in use and auto", "entry", 12, 0x3, 4),
                d("granularity bits 8", "entry", 17, 8, 1),
                d("granularity bits 32", "entry", 17, 32, 1),
                d("granularity bits 31", "entry", 17, 31, 1),
                d("type 2", "entry", 16, 2, 1),
                d("table size 0", "entry", 8, 0, 4),
                d("table size 2", "entry", 8, 2, 4),
                d("table size huge", "entry", 8, 0x8000001L, 4),
                d("table offset 0", "entry", 0, 0, 8),
                d("table offset unaligned", "entry", 0, 0x10200, 8),
                d("table past the end of the file", "entry", 0, 1L << 40, 8),
                d("table offset negative", "entry", 0, 0xff00000000010000L, 8),
                d("directory offset negative", "ext", 16, 0xff00000000010000L, 8),
                d("name size past the directory", "entry", 18, 4000, 2),
                d("extra data", "entry", 20, 8, 4),
                d("table entry with reserved bits", "table", 0, 0x2, 8),
                d("table entry with offset and all-ones bit", "table", 0, 0x50001, 8),
                d("table entry unaligned", "table", 0, 0x50200, 8),
                d("table entry all ones", "table", 0, 1, 8));
    }

    private static Arguments d(String name, String where, int offset, long value, int width) {
        return Arguments.of(new Damage(name, where, offset, value, width));
    }

    private static void apply(Path img, Damage dmg) throws Exception {
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long[] loc = locate(ch);
            long base = switch (dmg.where()) {
                case "ext" -> loc[0];
                case "entry" -> loc[1];
                case "table" -> {
                    ByteBuffer e = ByteBuffer.allocate(8);
                    ch.read(e, loc[1]);
                    yield e.getLong(0);
                }
                default -> throw new IllegalArgumentException(dmg.where());
            };
            ByteBuffer b = ByteBuffer.allocate(dmg.width());
            switch (dmg.width()) {
                case 1 -> b.put(0, (byte) dmg.value());
                case 2 -> b.putShort(0, (short) dmg.value());
                case 4 -> b.putInt(0, (int) dmg.value());
                default -> b.putLong(0, dmg.value());
            }
            ch.write(b, base + dmg.offset());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("damages")
    void damagedBitmapsAreReportedAsQemuImgReportsThem(Damage dmg) throws Exception {
        Path img = dir.resolve("d-" + System.nanoTime() + ".qcow2");
        Files.copy(template, img);
        apply(img, dmg);
        for (List<String> form : List.of(args("info"), args("info", "--output=json"), args("check"),
                args("check", "--output=json"), args("map", "--output=json"))) {
            form.add(img.toString());
            assertSameAsQemu(form);
        }
        // Read-write: two copies, one per tool, as a bitmap command changes the image.
        Path q = dir.resolve("q-" + System.nanoTime() + ".qcow2");
        Path j = dir.resolve("j-" + System.nanoTime() + ".qcow2");
        Files.copy(img, q);
        Files.copy(img, j);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(List.of("bitmap", "--add", q.toString(), "new"));
        // The format layer reports clusters it could not free on the process's stderr, as QEMU's does.
        java.io.ByteArrayOutputStream stray = new java.io.ByteArrayOutputStream();
        java.io.PrintStream oldErr = System.err;
        QemuImgOracle.Run run;
        System.setErr(new java.io.PrintStream(stray, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            run = QemuImgOracle.jblock(List.of("bitmap", "--add", j.toString(), "new"));
        } finally {
            System.setErr(oldErr);
        }
        QemuImgOracle.Run actual = new QemuImgOracle.Run(run.out(), stray + run.err(), run.status());
        assertThat(mask(actual, j)).isEqualTo(mask(expected, q));
        if (expected.status() == 0) {
            // The damage may itself leak a cluster: both results must check alike, and hold the same bitmaps.
            assertThat(mask(QemuImgOracle.qemu(List.of("check", j.toString())), j))
                    .isEqualTo(mask(QemuImgOracle.qemu(List.of("check", q.toString())), q));
            assertThat(BitmapOracle.infoJson(j)).isEqualTo(BitmapOracle.infoJson(q));
            for (String name : ImgBitmapCompatTest.bitmapNames(q)) {
                assertThat(BitmapOracle.dirtyMap(j, name)).as(name).isEqualTo(BitmapOracle.dirtyMap(q, name));
            }
        }
    }

    private static QemuImgOracle.Run mask(QemuImgOracle.Run r, Path img) {
        return new QemuImgOracle.Run(r.out().replace(img.toString(), "IMG"),
                r.err().replace(img.toString(), "IMG").replaceAll("#block\\d+", "#blockN"), r.status());
    }

    @Test
    void templateIsSane() {
        assertSameAsQemu(args("info", template.toString()));
        assertThat(QemuImgOracle.qemu(args("check", template.toString())).status()).isZero();
    }
}
