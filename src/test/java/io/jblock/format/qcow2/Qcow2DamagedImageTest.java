package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.Drive;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import io.jblock.protocol.FileDriver;
import io.jblock.format.RawDriver;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static io.jblock.format.qcow2.QemuImages.qemuImg;
import static io.jblock.format.qcow2.QemuImages.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Damaged and hostile images, after QEMU's iotest 080: each gets a clear
 * error naming what is wrong, the one {@code qemu-img info} prints where QEMU
 * refuses the image too. The timeout guards against hangs; a hostile size
 * that made jblock allocate or loop would trip it or run out of memory.
 */
@Timeout(120)
class Qcow2DamagedImageTest {
    @TempDir
    Path dir;

    /** A header field to overwrite: where, how wide (4 or 8 bytes), with what. */
    record Patch(int offset, int width, long value) {
    }

    static Patch p(int offset, int width, long value) {
        return new Patch(offset, width, value);
    }

    static Stream<Arguments> headersQemuRefusesToo() {
        return Stream.of(
                Arguments.of("huge header length", List.of(p(100, 4, 0x100000)), "qcow2 header exceeds cluster size"),
                Arguments.of("short header length", List.of(p(100, 4, 50)), "qcow2 header too short"),
                Arguments.of("cluster_bits 22", List.of(p(20, 4, 22)), "Unsupported cluster size: 2^22"),
                Arguments.of("cluster_bits 8", List.of(p(20, 4, 8)), "Unsupported cluster size: 2^8"),
                Arguments.of("version 4", List.of(p(4, 4, 4)), "Unsupported qcow2 version 4"),
                Arguments.of("unknown incompatible feature", List.of(p(72, 8, 1L << 30)),
                        "Unsupported qcow2 feature(s): Unknown incompatible feature: 40000000"),
                Arguments.of("huge refcount table", List.of(p(56, 4, 0xffffff)), "Reference count table too large"),
                Arguments.of("no refcount table", List.of(p(56, 4, 0)),
                        "Image does not contain a reference count table"),
                Arguments.of("unaligned refcount table", List.of(p(48, 8, 0x10001)),
                        "Reference count table offset invalid"),
                Arguments.of("huge refcount table offset", List.of(p(48, 8, 0xffffffffffff0000L)),
                        "Reference count table offset invalid"),
                Arguments.of("too many snapshots", List.of(p(60, 4, 0x10001)), "Snapshot table too large"),
                Arguments.of("unaligned snapshot table", List.of(p(60, 4, 1), p(64, 8, 0x10001)),
                        "Snapshot table offset invalid"),
                Arguments.of("huge snapshot table offset", List.of(p(60, 4, 1), p(64, 8, 0xffffffffffff0000L)),
                        "Snapshot table offset invalid"),
                Arguments.of("huge L1 table", List.of(p(36, 4, 0x10000000)), "Active L1 table too large"),
                Arguments.of("L1 table too small", List.of(p(36, 4, 0)), "L1 table is too small"),
                Arguments.of("unaligned L1 table", List.of(p(40, 8, 0x30001)), "Active L1 table offset invalid"),
                Arguments.of("huge L1 table offset", List.of(p(40, 8, 0xffffffffffff0000L)),
                        "Active L1 table offset invalid"),
                Arguments.of("huge virtual size", List.of(p(24, 8, 1L << 62)), "Image is too big"),
                Arguments.of("refcount_order 7", List.of(p(96, 4, 7)),
                        "Reference count entry width too large; may not exceed 64 bits"),
                Arguments.of("unknown compression type", List.of(p(104, 4, 0x02000000)),
                        "qcow2: unknown compression type: 2"),
                Arguments.of("zstd without its feature bit", List.of(p(104, 4, 0x01000000)),
                        "qcow2: Compression type incompatible feature bit must be set"),
                Arguments.of("zlib with the compression feature bit", List.of(p(72, 8, 1L << 3)),
                        "qcow2: Compression type incompatible feature bit must not be set"),
                Arguments.of("backing name too long", List.of(p(8, 8, 0x1000), p(16, 4, 2000)),
                        "Backing file name too long"),
                Arguments.of("backing name past the first cluster", List.of(p(8, 8, 0xff00), p(16, 4, 0x200)),
                        "Backing file name too long"),
                Arguments.of("backing name offset past the first cluster", List.of(p(8, 8, 0x20000)),
                        "Invalid backing file offset"),
                Arguments.of("huge header extension", List.of(p(116, 4, 0xffff)), "Header extension too large"),
                Arguments.of("unknown encryption method", List.of(p(32, 4, 3)), "Unsupported encryption method 3"),
                Arguments.of("extended L2 with 4 KiB clusters", List.of(p(72, 8, 1L << 4), p(20, 4, 12)),
                        "Unsupported subcluster size: 128"),
                Arguments.of("data file bit without a data file", List.of(p(72, 8, 1L << 2)),
                        "'data-file' is required for this image"),
                Arguments.of("raw data file without a data file", List.of(p(88, 8, 1L << 1)),
                        "data-file-raw requires a data file"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource
    void headersQemuRefusesToo(String what, List<Patch> patches, String message) throws Exception {
        Path img = freshImage("h.qcow2", "64M");
        patch(img, patches);
        Peers.Result qemu = Peers.run(60, List.of(Peers.require("qemu-io"), "-r", "-c", "read 0 512",
                img.toString()));
        assertThat(qemu.err()).as("QEMU's own message").contains(message);
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.class).hasMessage(message);
    }

    /** The bitmaps extension's fields: count (+0), directory size (+8), directory offset (+16); -4 is its length. */
    static Stream<Arguments> bitmapExtensionsQemuRefusesToo() {
        return Stream.of(
                Arguments.of("too many bitmaps", 0, 4, 70000L,
                        "bitmaps_ext: Image has 70000 bitmaps, exceeding the QEMU supported maximum of 65535"),
                Arguments.of("zero bitmaps", 0, 4, 0L, "found bitmaps extension with zero bitmaps"),
                Arguments.of("unaligned directory", 16, 8, 0x10001L, "bitmaps_ext: invalid bitmap directory offset"),
                Arguments.of("huge directory", 8, 8, 1L << 40, "bitmaps_ext: bitmap directory size (1099511627776)"
                        + " exceeds the maximum supported size (67107840)"),
                Arguments.of("wrong extension length", -4, 4, 16L, "bitmaps_ext: Invalid extension length"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource
    void bitmapExtensionsQemuRefusesToo(String what, int field, int width, long value, String message)
            throws Exception {
        Path img = freshImage("bm.qcow2", "64M");
        qemuImg("bitmap", "--add", img.toString(), "b0");
        long at = 112;
        while (field(img, at, 4) != Qcow2Extensions.BITMAPS) {
            at += 8 + ((field(img, at + 4, 4) + 7) & ~7);
        }
        writeAt(img, at + 8 + field, width, value);
        Peers.Result qemu = Peers.run(60, List.of(Peers.require("qemu-io"), "-r", "-c", "read 0 512",
                img.toString()));
        assertThat(qemu.err()).as("QEMU's own message").contains(message);
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.Corrupt.class).hasMessage(message);
    }

    @Test
    void aSnapshotEntryWithTooMuchExtraDataIsRefusedAsQemuRefusesIt() throws Exception {
        Path img = freshImage("snx.qcow2", "4M");
        qemuImg("snapshot", "-c", "s1", img.toString());
        writeAt(img, field(img, 64, 8) + 36, 4, 2000);
        String message = "Too much extra metadata in snapshot table entry 0\n"
                + "You can force-remove this extra metadata with qemu-img check -r all";
        Peers.Result qemu = Peers.run(60, List.of(Peers.require("qemu-io"), "-r", "-c", "read 0 512",
                img.toString()));
        assertThat(qemu.err()).contains(message);
        // QEMU's errno for it is EFBIG (qemu-img check says "File too large").
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.class).hasMessage(message)
                .extracting(e -> ((BlockException) e).errno()).isEqualTo(io.jblock.block.Errno.EFBIG);
    }

    @Test
    void snapshotEntriesPastTheEndOfTheFileAreCorrupt() throws Exception {
        Path img = freshImage("snp.qcow2", "4M");
        qemuImg("snapshot", "-c", "s1", img.toString());
        // A 64 KiB name: QEMU reads zeroes past the end of the file for it; jblock refuses to read there.
        long name = field(img, 64, 8) + 14;
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(name);
            f.writeShort(0xffff);
        }
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.Corrupt.class)
                .hasMessageStartingWith("Snapshot table entry ").hasMessageContaining("runs past the end of the image file");
    }

    @Test
    void unknownIncompatibleFeaturesAreNamedFromTheFeatureNameTable() throws Exception {
        Path img = freshImage("named.qcow2", "64M");
        assertThat(field(img, 112, 4)).as("feature name table first").isEqualTo(Qcow2Extensions.FEATURE_NAME_TABLE);
        // Rename its first entry (incompatible bit 0, "dirty bit") to bit 30, then set bits 30 and 40.
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(120 + 1);
            f.write(30);
            byte[] name = new byte[46];
            byte[] text = "future feature".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            System.arraycopy(text, 0, name, 0, text.length);
            f.write(name);
        }
        writeAt(img, 72, 8, (1L << 30) | (1L << 40));
        String message = "Unsupported qcow2 feature(s): future feature, Unknown incompatible feature: 10000000000";
        Peers.Result qemu = Peers.run(60, List.of(Peers.require("qemu-io"), "-r", "-c", "read 0 512",
                img.toString()));
        assertThat(qemu.err()).contains(message);
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.Unsupported.class)
                .hasMessage(message);
    }

    @Test
    void encryptedImagesAreRefusedAsUnsupported() throws Exception {
        Path img = freshImage("aes.qcow2", "64M");
        patch(img, List.of(p(32, 4, 1)));
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.Unsupported.class)
                .hasMessage("Encrypted qcow2 images (encryption method aes) are unsupported in jblock");
        patch(img, List.of(p(32, 4, 2)));
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.Unsupported.class)
                .hasMessageContaining("luks");
    }

    @Test
    void tablesPastTheEndOfTheFileAreCorruptNotReadAsZeroes() throws Exception {
        Path img = freshImage("eof.qcow2", "64M");
        long length = (Files.size(img) + 511) / 512 * 512; // the file node counts whole sectors, as QEMU does
        patch(img, List.of(p(40, 8, 0x1000000)));
        assertThatThrownBy(() -> QemuImages.open(img)).isInstanceOf(BlockException.Corrupt.class)
                .hasMessage("Active L1 table offset invalid: 0x1000000 + 8 bytes is past the end of the image file"
                        + " (length " + length + ")");
    }

    @Test
    void anL2TablePastTheEndOfTheFileFailsTheReadThatNeedsIt() throws Exception {
        Path img = freshImage("l2eof.qcow2", "2G");
        // One L1 entry maps 512 MiB at 64 KiB clusters: 1 GiB is under another L2 table.
        qemuIo(img, List.of("write -P 0x33 0 64k", "write -P 0x44 1G 64k"));
        long l1 = field(img, 40, 8);
        writeAt(img, l1, 8, (1L << 63) | 0x40000000L);
        try (Drive d = QemuImages.open(img)) {
            assertThatThrownBy(() -> d.read(0, ByteBuffer.allocate(512))).isInstanceOf(BlockException.Corrupt.class)
                    .hasMessageStartingWith("L2 table offset 0x40000000 (L1 index: 0) is past the end of the image file");
            ByteBuffer other = ByteBuffer.allocate(512);
            d.read(1L << 30, other);
            assertThat(other.array()).as("another L2 table still reads").containsOnly((byte) 0x44);
        }
    }

    @Test
    void anUnalignedL2TableIsCorruptWithQemusMessage() throws Exception {
        Path img = freshImage("l2unal.qcow2", "64M");
        qemuIo(img, List.of("write -P 0x33 0 64k"));
        long l1 = field(img, 40, 8);
        long l2 = field(img, l1, 8) & Qcow2L2Entry.OFFSET_MASK;
        writeAt(img, l1, 8, (1L << 63) | (l2 + 0x200));
        try (Drive d = QemuImages.open(img)) {
            assertThatThrownBy(() -> d.read(0, ByteBuffer.allocate(512))).isInstanceOf(BlockException.Corrupt.class)
                    .hasMessage("L2 table offset " + Qcow2ClusterMap.hex(l2 + 0x200) + " unaligned (L1 index: 0)");
        }
        Peers.Result qemu = Peers.run(60, List.of(Peers.require("qemu-io"), "-r", "-c", "read 0 512",
                img.toString()));
        assertThat(qemu.err() + qemu.out()).contains("L2 table offset " + Qcow2ClusterMap.hex(l2 + 0x200)
                + " unaligned (L1 index: 0");
    }

    @Test
    void anUnalignedDataClusterIsCorrupt() throws Exception {
        Path img = freshImage("dunal.qcow2", "64M");
        qemuIo(img, List.of("write -P 0x33 0 64k"));
        long l1 = field(img, 40, 8);
        long l2 = field(img, l1, 8) & Qcow2L2Entry.OFFSET_MASK;
        long entry = field(img, l2, 8);
        writeAt(img, l2, 8, entry + 0x200);
        try (Drive d = QemuImages.open(img)) {
            assertThatThrownBy(() -> d.read(0, ByteBuffer.allocate(512))).isInstanceOf(BlockException.Corrupt.class)
                    .hasMessageStartingWith("Cluster allocation offset "
                            + Qcow2ClusterMap.hex((entry & Qcow2L2Entry.OFFSET_MASK) + 0x200) + " unaligned");
        }
    }

    @Test
    void aCompressedClusterPastTheEndOfTheFileIsCorrupt() throws Exception {
        Path img = compressedImage();
        long l2 = field(img, field(img, 40, 8), 8) & Qcow2L2Entry.OFFSET_MASK;
        long entry = field(img, l2, 8);
        assertThat(entry & Qcow2L2Entry.COMPRESSED).as("first cluster is compressed").isNotZero();
        long hugeOffset = (1L << 50);
        long hostMask = (1L << (62 - (16 - 8))) - 1;
        writeAt(img, l2, 8, (entry & ~hostMask) | hugeOffset);
        try (Drive d = QemuImages.open(img)) {
            assertThatThrownBy(() -> d.read(0, ByteBuffer.allocate(512))).isInstanceOf(BlockException.Corrupt.class)
                    .hasMessageContaining("Compressed cluster at guest offset 0 has host offset 0x4000000000000"
                            + " past the end of the image file");
        }
    }

    @Test
    void aCompressedClusterThatDoesNotDecodeIsCorrupt() throws Exception {
        Path img = compressedImage();
        long l2 = field(img, field(img, 40, 8), 8) & Qcow2L2Entry.OFFSET_MASK;
        long entry = field(img, l2, 8);
        long host = Qcow2L2Entry.compressedOffset(entry, 16);
        byte[] junk = new byte[64];
        java.util.Arrays.fill(junk, (byte) 0xff);
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(host);
            f.write(junk);
        }
        try (Drive d = QemuImages.open(img)) {
            assertThatThrownBy(() -> d.read(0, ByteBuffer.allocate(512))).isInstanceOf(BlockException.Corrupt.class)
                    .hasMessageStartingWith("Could not decompress the zlib compressed cluster at guest offset 0:");
        }
    }

    @Test
    void aBackingLoopIsRefused() throws Exception {
        Path a = freshImage("a.qcow2", "1M");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", dir.resolve("b.qcow2").toString());
        qemuImg("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", a.toString());
        assertThatThrownBy(() -> QemuImages.open(a)).isInstanceOf(BlockException.Corrupt.class)
                .hasMessageContaining("Backing file loop: '" + a + "' is a backing file of itself");
    }

    @Test
    void aChainDeeperThanTheLimitIsRefused() throws Exception {
        freshImage("c0.qcow2", "1M");
        for (int i = 1; i <= Qcow2Limits.MAX_CHAIN_DEPTH + 1; i++) {
            qemuImg("create", "-q", "-f", "qcow2", "-b", "c" + (i - 1) + ".qcow2", "-F", "qcow2",
                    dir.resolve("c" + i + ".qcow2").toString());
        }
        try (Drive ok = QemuImages.open(dir.resolve("c" + Qcow2Limits.MAX_CHAIN_DEPTH + ".qcow2"))) {
            assertThat(ok.length()).isEqualTo(1 << 20);
        }
        assertThatThrownBy(() -> QemuImages.open(dir.resolve("c" + (Qcow2Limits.MAX_CHAIN_DEPTH + 1) + ".qcow2")))
                .isInstanceOf(BlockException.Unsupported.class).hasMessageContaining("Backing chain too deep");
    }

    @Test
    void jsonBackingNamesAreRefusedUnlessAllowed() throws Exception {
        Path base = freshImage("jbase.qcow2", "1M");
        qemuIo(base, List.of("write -P 0x21 0 4k"));
        Path top = freshImage("jtop.qcow2", "1M");
        String json = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"" + base + "\"}}";
        qemuImg("rebase", "-u", "-b", json, "-F", "qcow2", top.toString());
        assertThatThrownBy(() -> QemuImages.open(top)).isInstanceOf(BlockException.Unsupported.class)
                .hasMessageContaining("is a json: description");
        try (Drive d = opener(new Qcow2Driver.Policy(true, false)).open(readOnly(top))) {
            ByteBuffer b = ByteBuffer.allocate(4096);
            d.read(0, b);
            assertThat(b.array()).containsOnly((byte) 0x21);
        }
    }

    @Test
    void aBackingFileOfUnrecordedFormatIsProbedOnlyWhenAllowed() throws Exception {
        Path base = freshImage("pbase.qcow2", "1M");
        qemuIo(base, List.of("write -P 0x5c 0 4k"));
        Path top = dir.resolve("ptop.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "pbase.qcow2", "-F", "qcow2", top.toString());
        forgetBackingFormat(top);
        assertThat(qemuImg("info", top.toString()).out()).doesNotContain("backing file format");
        assertThatThrownBy(() -> QemuImages.open(top)).isInstanceOf(BlockException.Unsupported.class)
                .hasMessageContaining("does not record the format of its backing file 'pbase.qcow2'");
        try (Drive d = opener(new Qcow2Driver.Policy(false, true)).open(readOnly(top))) {
            ByteBuffer b = ByteBuffer.allocate(4096);
            d.read(0, b);
            assertThat(b.array()).containsOnly((byte) 0x5c);
        }
        try (Drive d = DriveOpener.standard().open(DriveConfig.parseDrive(
                "file=" + top + ",format=qcow2,read-only=on,backing.driver=qcow2"))) {
            assertThat(d.root().child("backing").driverName()).as("backing.driver given by the user").isEqualTo("qcow2");
        }
    }

    @Test
    void aMissingBackingFileNamesIt() throws Exception {
        Path top = dir.resolve("orphan.qcow2");
        freshImage("gone.qcow2", "1M");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", top.toString());
        Files.delete(dir.resolve("gone.qcow2"));
        assertThatThrownBy(() -> QemuImages.open(top)).isInstanceOf(BlockException.class)
                .hasMessageStartingWith("Could not open backing file: ").hasMessageContaining("gone.qcow2");
    }

    @Test
    void aFileThatIsNotQcow2IsRefusedAsQemuRefusesIt() throws Exception {
        Path junk = dir.resolve("junk.img");
        Files.write(junk, new byte[100]);
        assertThatThrownBy(() -> QemuImages.open(junk)).isInstanceOf(BlockException.class)
                .hasMessage("Image is not in qcow2 format");
        Peers.Result qemu = Peers.run(60, List.of(Peers.require("qemu-img"), "info", "-f", "qcow2", junk.toString()));
        assertThat(qemu.err()).contains("Image is not in qcow2 format");
    }

    // ---------------------------------------------------------------- helpers

    private Path freshImage(String name, String size) throws Exception {
        Path img = dir.resolve(name);
        qemuImg("create", "-q", "-f", "qcow2", img.toString(), size);
        return img;
    }

    private Path compressedImage() throws Exception {
        Path src = freshImage("csrc.qcow2", "1M");
        qemuIo(src, List.of("write -P 0x61 0 1M"));
        Path img = dir.resolve("comp.qcow2");
        qemuImg("convert", "-c", "-O", "qcow2", src.toString(), img.toString());
        return img;
    }

    /** Turns the backing format extension into an unknown one, as an image written before -F existed. */
    private static void forgetBackingFormat(Path img) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            long at = 112;
            while (true) {
                f.seek(at);
                int type = f.readInt();
                int len = f.readInt();
                if (type == 0) {
                    throw new AssertionError("no backing format extension in " + img);
                }
                if (type == Qcow2Extensions.BACKING_FORMAT) {
                    f.seek(at);
                    f.writeInt(0x7e57ab1e);
                    return;
                }
                at += 8 + ((len + 7) & ~7);
            }
        }
    }

    private static DriveConfig readOnly(Path img) throws BlockException {
        return DriveConfig.parseDrive("file=" + img + ",format=qcow2,read-only=on");
    }

    private static DriveOpener opener(Qcow2Driver.Policy policy) {
        DriverRegistry r = new DriverRegistry();
        r.register(new FileDriver());
        r.register(new RawDriver());
        r.register(new Qcow2Driver(policy));
        return new DriveOpener(new GraphOpener(r, GraphOpener::standardEngine));
    }

    private static void patch(Path img, List<Patch> patches) throws IOException {
        for (Patch p : patches) {
            writeAt(img, p.offset(), p.width(), p.value());
        }
    }

    private static void writeAt(Path img, long offset, int width, long value) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(offset);
            if (width == 8) {
                f.writeLong(value);
            } else {
                f.writeInt((int) value);
            }
        }
    }

    private static long field(Path img, long offset, int width) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            f.seek(offset);
            return width == 8 ? f.readLong() : Integer.toUnsignedLong(f.readInt());
        }
    }
}
