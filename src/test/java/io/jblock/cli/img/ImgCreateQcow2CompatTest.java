package io.jblock.cli.img;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code create -f qcow2} against qemu-img 7.2: the same "Formatting" line,
 * errors and exit status, and the same file, byte for byte, with the same
 * allocated blocks and data extents ({@link FileState}); then qemu-img
 * itself checks and describes jblock's images.
 */
class ImgCreateQcow2CompatTest {
    private Path dir;
    private Path image;

    @BeforeEach
    void makeDirectory() throws Exception {
        dir = CompatSupport.freshDir();
        image = dir.resolve("a.qcow2");
        QemuImgOracle.qemu(args("create", "-q", "-f", "raw", dir.resolve("base.raw").toString(), "10M"));
        QemuImgOracle.qemu(args("create", "-q", "-f", "qcow2", dir.resolve("base.qcow2").toString(), "20M"));
    }

    @AfterEach
    void removeDirectory() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private List<String> withImage(String... a) {
        List<String> out = new ArrayList<>();
        for (String s : a) {
            out.add(s.replace("IMG", image.toString()).replace("DIR", dir.toString()));
        }
        return out;
    }

    private void same(String... a) throws Exception {
        same(withImage(a));
    }

    /**
     * As {@link CompatSupport#assertCreatesSameAsQemu}, but the allocated
     * size may differ by two file system blocks: ext4 counts the blocks of
     * its extent tree, which depend on how the file system placed the
     * writes, not on what was written (same bytes, same data extents).
     */
    private void same(List<String> a) throws Exception {
        CompatSupport.deleteTree(image);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(a);
        FileState expectedFile = FileState.of(image);
        CompatSupport.deleteTree(image);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(a);
        FileState actualFile = FileState.of(image);
        assertThat(actual).as("jblock vs qemu-img for %s", a).isEqualTo(expected);
        assertSameFile(actualFile, expectedFile, a);
    }

    private static void assertSameFile(FileState actual, FileState expected, Object what) {
        assertThat(withoutAllocation(actual)).as("file left by %s", what).isEqualTo(withoutAllocation(expected));
        assertThat(actual.allocated()).as("allocated bytes of the file left by %s", what)
                .isBetween(expected.allocated() - 8192, expected.allocated() + 8192);
    }

    private static FileState withoutAllocation(FileState f) {
        return new FileState(f.exists(), f.mode(), f.size(), 0, f.extents(), f.dataDigest());
    }

    static Stream<String> layouts() {
        return Stream.of("", "compat=0.10", "compat=1.1", "compat=v2", "cluster_size=512", "cluster_size=1k",
                "cluster_size=4k", "cluster_size=8k", "cluster_size=2M", "refcount_bits=1,cluster_size=512",
                "refcount_bits=2", "refcount_bits=4,cluster_size=1k", "refcount_bits=8", "refcount_bits=32",
                "refcount_bits=64,cluster_size=512", "lazy_refcounts=on", "extended_l2=on",
                "extended_l2=on,cluster_size=16k", "compression_type=zstd", "compression_type=zlib",
                "lazy_refcounts=on,compression_type=zstd,extended_l2=on,refcount_bits=8",
                "preallocation=off", "preallocation=metadata", "preallocation=metadata,cluster_size=512",
                "preallocation=metadata,cluster_size=512,refcount_bits=64", "preallocation=metadata,extended_l2=on",
                "preallocation=metadata,cluster_size=2M", "preallocation=falloc", "preallocation=falloc,cluster_size=512",
                "preallocation=full,cluster_size=1k,refcount_bits=2", "preallocation=metadata,lazy_refcounts=on");
    }

    @ParameterizedTest
    @MethodSource("layouts")
    void theSameFileForEachLayout(String options) throws Exception {
        for (String size : List.of("0", "1", "1000", "1M", "33M")) {
            List<String> a = options.isEmpty() ? withImage("create", "-f", "qcow2", "IMG", size)
                    : withImage("create", "-f", "qcow2", "-o", options, "IMG", size);
            same(a);
        }
    }

    @ParameterizedTest
    @MethodSource("layouts")
    void qemuImgChecksAndDescribesJblocksImagesAsItsOwn(String options) throws Exception {
        List<String> a = new ArrayList<>(withImage("create", "-q", "-f", "qcow2"));
        if (!options.isEmpty()) {
            a.addAll(List.of("-o", options));
        }
        a.addAll(List.of(image.toString(), "5M"));
        assertThat(QemuImgOracle.jblock(a).status()).isZero();
        QemuImgOracle.Run check = QemuImgOracle.qemu(args("check", image.toString()));
        assertThat(check.out()).as("qemu-img check of %s", options).startsWith("No errors were found on the image.");
        assertThat(check.status()).isZero();
        String info = withoutActualSize(QemuImgOracle.qemu(args("info", "--output=json", image.toString())).out());
        String map = QemuImgOracle.qemu(args("map", "--output=json", image.toString())).out();
        Files.delete(image);
        assertThat(QemuImgOracle.qemu(a).status()).isZero();
        assertThat(withoutActualSize(QemuImgOracle.qemu(args("info", "--output=json", image.toString())).out()))
                .isEqualTo(info);
        assertThat(QemuImgOracle.qemu(args("map", "--output=json", image.toString())).out()).isEqualTo(map);
    }

    /** "actual-size" is the file system's allocation (see {@link #assertSameFile}). */
    private static String withoutActualSize(String infoJson) {
        return infoJson.replaceAll("\"actual-size\": [0-9]+", "\"actual-size\": N");
    }

    @Test
    void largeImagesGrowTheRefcountTableAsQemuDoes() throws Exception {
        same("create", "-f", "qcow2", "-o", "cluster_size=512", "IMG", "100G");
        same("create", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=1", "IMG", "30G");
        same("create", "-f", "qcow2", "IMG", "100T");
        same("create", "-f", "qcow2", "-o", "preallocation=metadata,cluster_size=512", "IMG", "200M");
        same("create", "-f", "qcow2", "-o", "preallocation=metadata", "IMG", "5G");
        same("create", "-f", "qcow2", "-o", "preallocation=falloc,cluster_size=512", "IMG", "100M");
    }

    @Test
    void sizesTooLargeForTheFormatOrTheBlockLayerFailWithQemusWords() throws Exception {
        for (String size : List.of("7E", "64P", "8E", "1E")) {
            same("create", "-f", "qcow2", "IMG", size);
        }
        same("create", "-f", "qcow2", "-o", "cluster_size=512", "IMG", "4T");
        same("create", "-f", "qcow2", "-o", "cluster_size=2M", "IMG", "1E");
        same("create", "-f", "qcow2", "-o", "size=9223372036854775807", "IMG");
        same("create", "-f", "qcow2", "-o", "size=9223372036854775296", "IMG");
        same("create", "-f", "qcow2", "-o", "size=18446744073709551615", "IMG");
        same("create", "-f", "qcow2", "-u", "-F", "raw", "-b", "b".repeat(1100), "IMG", "1M");
        same("create", "-f", "qcow2", "-u", "-F", "raw", "-o", "cluster_size=512", "-b", "b".repeat(600), "IMG", "1M");
    }

    static Stream<List<String>> optionErrors() {
        return Stream.of("compat=foo", "cluster_size=1000", "cluster_size=256", "cluster_size=4M", "cluster_size=0",
                "cluster_size=foo", "refcount_bits=3", "refcount_bits=128", "refcount_bits=foo", "refcount_bits=0",
                "refcount_bits=0x10", "refcount_bits= 16", "refcount_bits=-1", "refcount_bits=16.0", "refcount_bits=1k",
                "refcount_bits=020", "compat=0.10,refcount_bits=8", "compression_type=foo",
                "compression_type=zstd,compat=0.10", "compat=0.10,lazy_refcounts=on", "compat=0.10,extended_l2=on",
                "extended_l2=on,cluster_size=8k", "preallocation=foo", "preallocation=METADATA", "data_file_raw=on",
                "data_file=DIR/d.raw,compat=0.10", "lazy_refcounts=foo", "lazy_refcounts=yes", "extended_l2=n",
                "encryption=foo", "encryption=on", "encryption=off", "encrypt.format=foo", "encrypt.format=luks",
                "encrypt.format=aes", "encrypt.format=luks,encrypt.key-secret=sec0", "encrypt.iter-time=x",
                "encrypt.cipher-alg=aes-256", "backing_fmt=raw", "backing_fmt=raw,preallocation=full", "size=1000",
                "compat=1.1,compat=0.10", "cluster_size=64k,nocow=on,extent_size_hint=1M", "foo=bar",
                "preallocation=metadata,compat=0.10,lazy_refcounts=on")
                .map(o -> args("create", "-f", "qcow2", "-o", o, "IMG", "1M"));
    }

    @ParameterizedTest
    @MethodSource
    void optionErrors(List<String> a) throws Exception {
        same(a.toArray(new String[0]));
    }

    static Stream<List<String>> backingFiles() {
        return Stream.of(
                args("create", "-f", "qcow2", "-b", "DIR/base.raw", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "IMG", "3M"),
                args("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "raw", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "qcow2", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "foo", "IMG"),
                args("create", "-f", "qcow2", "-b", "nope", "-F", "raw", "IMG"),
                args("create", "-f", "qcow2", "-b", "nope", "-F", "raw", "-u", "IMG"),
                args("create", "-f", "qcow2", "-b", "nope", "-F", "raw", "-u", "IMG", "1M"),
                args("create", "-f", "qcow2", "-b", "nope", "-u", "IMG", "1M"),
                args("create", "-f", "qcow2", "-b", "nope", "-F", "foo", "-u", "IMG", "1M"),
                args("create", "-f", "qcow2", "-b", "IMG", "-F", "raw", "IMG"),
                args("create", "-f", "qcow2", "-b", "", "-F", "raw", "IMG", "1M"),
                args("create", "-f", "qcow2", "-F", "raw", "IMG", "1M"),
                args("create", "-f", "qcow2", "-o", "backing_file=base.raw,backing_fmt=raw", "IMG"),
                args("create", "-f", "qcow2", "-o", "backing_file=nope", "-b", "base.raw", "-F", "raw", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "preallocation=metadata", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o",
                        "preallocation=metadata,extended_l2=on", "IMG"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "compat=0.10", "IMG", "5M"),
                args("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "cluster_size=512", "IMG"),
                args("create", "-f", "qcow2", "-b", "DIR/base.raw", "-F", "raw", "IMG"),
                args("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "IMG"));
    }

    @ParameterizedTest
    @MethodSource
    void backingFiles(List<String> a) throws Exception {
        same(a.toArray(new String[0]));
    }

    @Test
    void aBackingNameIsRecordedAsGivenAndOpenedBesideTheImage() throws Exception {
        assertThat(QemuImgOracle.jblock(withImage("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
                "IMG")).status()).isZero();
        String info = QemuImgOracle.qemu(args("info", "--output=json", image.toString())).out();
        assertThat(info).contains("\"backing-filename\": \"base.qcow2\"").contains("\"virtual-size\": 20971520");
    }

    static Stream<List<String>> optionHelp() {
        return Stream.of(args("create", "-f", "qcow2", "-o", "help"), args("create", "-f", "qcow2", "-o", "?"),
                args("create", "-f", "qcow2", "-o", "help", "IMG"),
                args("create", "-f", "qcow2", "-o", "cluster_size=4k,help", "IMG", "1M"));
    }

    @ParameterizedTest
    @MethodSource
    void optionHelp(List<String> a) throws Exception {
        assertSameAsQemu(withImage(a.toArray(new String[0])));
    }

    @Test
    void anExternalDataFileIsCreatedAndNamedAsQemuDoes() throws Exception {
        Path data = dir.resolve("d.raw");
        for (String o : List.of("data_file=DIR/d.raw", "data_file=DIR/d.raw,data_file_raw=on",
                "data_file=DIR/d.raw,preallocation=metadata", "data_file=DIR/d.raw,preallocation=falloc",
                "data_file=DIR/d.raw,cluster_size=512,preallocation=metadata,lazy_refcounts=on",
                "data_file=DIR/d.raw,backing_file=base.raw,backing_fmt=raw,data_file_raw=on")) {
            for (String size : List.of("0", "1M", "3M")) {
                List<String> a = withImage("create", "-f", "qcow2", "-o", o, "IMG", size);
                Files.deleteIfExists(data);
                Files.deleteIfExists(image);
                QemuImgOracle.Run expected = QemuImgOracle.qemu(a);
                FileState expectedImage = FileState.of(image);
                FileState expectedData = FileState.of(data);
                Files.deleteIfExists(data);
                Files.deleteIfExists(image);
                QemuImgOracle.Run actual = QemuImgOracle.jblock(a);
                assertThat(actual).as("%s", a).isEqualTo(expected);
                assertSameFile(FileState.of(image), expectedImage, a);
                assertSameFile(FileState.of(data), expectedData, a);
            }
        }
    }
}
