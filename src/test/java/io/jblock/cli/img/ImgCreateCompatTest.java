package io.jblock.cli.img;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static io.jblock.cli.img.CompatSupport.args;
import static io.jblock.cli.img.CompatSupport.assertCreatesSameAsQemu;
import static io.jblock.cli.img.CompatSupport.assertSameAsQemu;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code create} against qemu-img: output, errors, exit status, and the file
 * each leaves behind (length, allocated blocks, data extents, data). Nothing
 * is masked.
 */
class ImgCreateCompatTest {
    private Path dir;
    private Path image;

    @BeforeEach
    void makeDirectory() throws Exception {
        dir = CompatSupport.freshDir();
        image = dir.resolve("a.img");
    }

    @AfterEach
    void removeDirectory() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private void same(String... a) throws Exception {
        assertCreatesSameAsQemu(image, t -> { }, withImage(a));
    }

    /** The arguments with "IMG" replaced by the image's path. */
    private List<String> withImage(String... a) {
        List<String> out = new ArrayList<>();
        for (String s : a) {
            out.add(s.replace("IMG", image.toString()));
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "1", "511", "512", "513", "4095", "4096", "4097", "65536", "1000000", "1b", "1B",
            "1k", "1K", "1m", "1M", "1g", "1G", "1t", "1T", "3T", "1.5k", "1.5M", "0.5G", "1.0", "1.", "1.k",
            "1.0000001k", "1.99999999999999999999k", "0x10", "0X10", "0x00010", "0x1b", "010", " 1", "  0x10",
            "+1", "+0x10", "0.00000000000000000001k"})
    void sizesQemuAcceptsMakeTheSameFile(String size) throws Exception {
        same("create", "IMG", size);
    }

    @ParameterizedTest
    @ValueSource(strings = {"0x1k", "0x2M"})
    void aSuffixOnAHexSizeWorksWithQemusDeprecationWarning(String size) throws Exception {
        same("create", "IMG", size);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "0.5", "1.5", "1.5b", "0.1b", "1x", "1kk", "1k5", "abc", "1e3", "1.5e3", "1 ",
            ".5k", "00x10", "0x", "0xg", "0x+1", "0x1.5k", "0x1.0", "1.99999999999b", "- 1", "k",
            "8E", "9223372036854775808", "18446744073709551615", "18446744073709551616",
            "99999999999999999999", "99999999999999999999x", "16E", "1e"})
    void sizesQemuRefusesAreRefusedWithItsMessage(String size) throws Exception {
        same("create", "IMG", size);
    }

    @ParameterizedTest
    @ValueSource(strings = {"1P", "1E", "7E", "8191P", "17T", "16T", "1.5e", "0.5E", "9223372036854775807",
            "9223372036854775296"})
    void sizesTheFileSystemRefusesFailAfterFormatting(String size) throws Exception {
        same("create", "IMG", size);
    }

    @ParameterizedTest
    @ValueSource(strings = {"off", "falloc", "full", "metadata", "foo", "a,,b", "OFF", ""})
    void preallocationModes(String mode) throws Exception {
        for (String size : List.of("0", "1", "4097", "1M")) {
            same("create", "-o", "preallocation=" + mode, "IMG", size);
        }
    }

    static Stream<List<String>> optionStrings() {
        return Stream.of(
                args("-o", "size=1M"),
                args("-o", "size=1M", "2M"),
                args("-o", "size=1k", "-o", "size=2k"),
                args("-o", "size=1k,size=2k"),
                args("-o", "size=abc"),
                args("-o", "size=-1"),
                args("-o", "size="),
                args("-o", "size"),
                args("-o", "size=1.5k"),
                args("-o", "size=1.5"),
                args("-o", "size=0x10"),
                args("-o", "size=0x1k"),
                args("-o", "size=0x1.5k"),
                args("-o", "size=8E"),
                args("-o", "size=16E"),
                args("-o", "size=15.9999999E"),
                args("-o", "size=15.999999999999999E"),
                args("-o", "size=15.9999999999999999E"),
                args("-o", "size=15.99999999999999999E"),
                args("-o", "size=18446744073709551615"),
                args("-o", "size=18446744073709551616"),
                args("-o", "size=+1"),
                args("-o", "size= 1"),
                args("-o", "size=1.5E"),
                args("-o", "Size=1k"),
                args("-o", "siz=1k"),
                args("-o", "id=x", "1k"),
                args("-o", "foo=bar", "1k"),
                args("-o", "foo", "1k"),
                args("-o", "=x", "1k"),
                args("-o", "a,,", "1k"),
                args("-o", "", "1k"),
                args("-o", ",", "1k"),
                args("-o", "size=1M,"),
                args("-o", ",size=1M"),
                args("-o", "size=1M,,,,"),
                args("-o", "size=1M,,,"),
                args("-o", "help=1", "1k"),
                args("-o", "nohelp", "1k"),
                args("-o", "nocow=on", "1k"),
                args("-o", "nocow=y", "1k"),
                args("-o", "nocow=yes", "1k"),
                args("-o", "nocow=false", "1k"),
                args("-o", "nocow=foo", "1k"),
                args("-o", "nocow", "1k"),
                args("-o", "nonocow", "1k"),
                args("-o", "extent_size_hint=1M", "1k"),
                args("-o", "extent_size_hint=0", "1k"),
                args("-o", "extent_size_hint=foo", "1k"),
                args("-o", "extent_size_hint=0x2k", "1k"),
                args("-o", "nocow=on,extent_size_hint=1M,preallocation=off", "1k"),
                args("-o", "preallocation=off,preallocation=full", "1k"),
                args("-o", "backing_file=x", "1k"),
                args("-o", "preallocation=full", "-o", "size=64k"));
    }

    @ParameterizedTest
    @MethodSource("optionStrings")
    void creationOptions(List<String> options) throws Exception {
        List<String> cmd = args("create");
        // The options, then the image, then any size that was given after them.
        int i = 0;
        while (i < options.size() && options.get(i).equals("-o")) {
            cmd.add(options.get(i));
            cmd.add(options.get(i + 1));
            i += 2;
        }
        cmd.add("IMG");
        cmd.addAll(options.subList(i, options.size()));
        same(cmd.toArray(new String[0]));
    }

    static Stream<List<String>> optionHelp() {
        return Stream.of(
                args("create", "-o", "help"),
                args("create", "-o", "?"),
                args("create", "-f", "raw", "-o", "help"),
                args("create", "-f", "raw", "-o", "help", "IMG"),
                args("create", "-f", "raw", "-o", "help", "IMG", "1M"),
                args("create", "-f", "raw", "-o", "size=1M,help", "IMG"),
                args("create", "-o", "size=1M", "-o", "help", "IMG"),
                args("create", "-o", "?", "IMG", "1k", "extra"),
                args("create", "-f", "file", "-o", "help"),
                args("create", "-f", "file", "-o", "help", "IMG"),
                args("create", "-f", "foo", "-o", "help"),
                args("create", "-f", "raw", "-o", "help", "foo:bar.img"));
    }

    @ParameterizedTest
    @MethodSource
    void optionHelp(List<String> a) throws Exception {
        same(a.toArray(new String[0]));
    }

    static Stream<List<String>> commandLines() {
        return Stream.of(
                args("create"),
                args("create", "-q"),
                args("create", "IMG"),
                args("create", "-f", "raw", "IMG"),
                args("create", "IMG", "1M", "extra"),
                args("create", "IMG", "1M", "extra", "more"),
                args("create", "-q", "IMG", "1M"),
                args("create", "-f", "raw", "-q", "IMG", "1M"),
                args("create", "-fraw", "IMG", "1M"),
                args("create", "--", "IMG", "1M"),
                args("create", "IMG", "-f", "raw", "1M"),
                args("create", "IMG", "1M", "-q"),
                args("create", "-b", "x", "IMG", "1M"),
                args("create", "-b", "x", "IMG"),
                args("create", "-F", "raw", "IMG", "1M"),
                args("create", "-b", "x", "-F", "raw", "IMG", "1M"),
                args("create", "-u", "IMG", "1M"),
                args("create", "-u", "-b", "x", "-F", "raw", "IMG", "1M"),
                args("create", "-f", "foo", "IMG", "1M"),
                args("create", "-f", "", "IMG", "1M"),
                args("create", "-f", "file", "IMG", "1M"),
                args("create", "-f", "file", "-o", "preallocation=full", "IMG", "64k"),
                args("create", "-f", "file", "-o", "size=0x1k", "IMG"),
                args("create", "-o", "size=0x1k", "-f", "raw", "IMG"));
    }

    @ParameterizedTest
    @MethodSource
    void commandLines(List<String> a) throws Exception {
        same(a.toArray(new String[0]));
    }

    @Test
    void anOldFileIsTruncatedFirst() throws Exception {
        for (String mode : List.of("off", "falloc", "full")) {
            for (String size : List.of("0", "3", "1M")) {
                assertCreatesSameAsQemu(image, t -> Files.write(t, new byte[70000]),
                        withImage("create", "-o", "preallocation=" + mode, "IMG", size));
                assertCreatesSameAsQemu(image, t -> Files.writeString(t, "hello, old data"),
                        withImage("create", "-o", "preallocation=" + mode, "IMG", size));
            }
        }
    }

    @Test
    void anOldFileKeepsItsPermissionsAndANewOneGetsQemusUnderTheUmask() throws Exception {
        same("create", "IMG", "1k");
        assertCreatesSameAsQemu(image, t -> {
            Files.write(t, new byte[10]);
            Files.setPosixFilePermissions(t, java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-rw-"));
        }, withImage("create", "IMG", "1k"));
    }

    @Test
    void anImageQemuNbdIsServingIsRefusedNotClobbered() throws Exception {
        Path qemuNbd = Path.of("/usr/bin/qemu-nbd");
        assertThat(Files.isExecutable(qemuNbd)).as("qemu-nbd must be installed (qemu-utils)").isTrue();
        Files.write(image, "precious data".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        Path socket = dir.resolve("nbd.sock").toAbsolutePath();
        Process holder = new ProcessBuilder(qemuNbd.toString(), "-f", "raw", "-k", socket.toString(),
                image.toString()).redirectErrorStream(true).start();
        try {
            // Wait (without any time limit asserted) until qemu-nbd has opened and locked the image.
            while (!Files.exists(socket) && holder.isAlive()) {
                Thread.sleep(20);
            }
            assertThat(holder.isAlive()).as("qemu-nbd serving the image").isTrue();
            FileState before = FileState.of(image);
            for (List<String> a : List.of(withImage("create", "IMG", "1M"),
                    withImage("create", "-o", "preallocation=full", "IMG", "64k"),
                    withImage("create", "-q", "file:IMG", "0"))) {
                QemuImgOracle.Run expected = QemuImgOracle.qemu(a);
                assertThat(FileState.of(image)).isEqualTo(before);
                QemuImgOracle.Run actual = QemuImgOracle.jblock(a);
                assertThat(actual).as("%s", a).isEqualTo(expected);
                assertThat(actual.err()).contains("Failed to get \"resize\" lock");
                assertThat(FileState.of(image)).as("the served image after %s", a).isEqualTo(before);
            }
        } finally {
            holder.destroy();
            holder.waitFor();
        }
    }

    @Test
    void theFileProtocolPrefixIsStrippedAndUnknownProtocolsRefused() throws Exception {
        same("create", "file:IMG", "1k");
        assertCreatesSameAsQemu(image, t -> { }, args("create", "foo:bar.img", "1k"));
        assertCreatesSameAsQemu(image, t -> { }, args("create", "json:{\"driver\":\"file\"}", "1k"));
        Path colon = dir.resolve("foo:bar.img");
        assertCreatesSameAsQemu(colon, t -> { }, args("create", "./" + colon, "1k"));
    }

    @Test
    void placesThatCannotHoldAFileAreRefused() throws Exception {
        assertCreatesSameAsQemu(image, Files::createDirectory, withImage("create", "IMG", "1M"));
        assertCreatesSameAsQemu(image, t -> { }, args("create", dir + "/missing/a.img", "1M"));
        assertCreatesSameAsQemu(image, t -> { }, args("create", "", "1M"));
    }

    @Test
    void absolutePathsAndOddNamesArePrintedAsGiven() throws Exception {
        Path odd = dir.resolve("w\u00e9\"ird\\ name 'x'.img");
        assertCreatesSameAsQemu(odd, t -> { }, args("create", odd.toAbsolutePath().toString(), "1k"));
        assertCreatesSameAsQemu(odd, t -> { }, args("create", "-o", "preallocation=x,,y", odd.toString(), "1k"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "1k", "-o preallocation=off 0", "-o preallocation=full 0", "-o preallocation=foo 0",
            "-o nocow=on 0", "-o help", "-f file 0", "-o size=0"})
    void characterDevicesGoThroughHostDeviceAndCannotGrow(String options) {
        for (String device : List.of("/dev/null", "/dev/zero")) {
            List<String> a = args("create");
            List<String> words = List.of(options.split(" "));
            int sizeAt = words.getLast().startsWith("-") || words.getLast().equals("help")
                    || words.getLast().startsWith("size=") ? words.size() : words.size() - 1;
            a.addAll(words.subList(0, sizeAt));
            a.add(device);
            a.addAll(words.subList(sizeAt, words.size()));
            assertSameAsQemu(a);
        }
    }

    // ---------------------------------------------------------------- where jblock differs on purpose

    @Test
    void formatsQemuHasAndJblockNotYetAreRefusedByName() throws Exception {
        QemuImgOracle.Run run = QemuImgOracle.jblock(withImage("create", "-f", "vmdk", "IMG", "1M"));
        assertThat(run.status()).isEqualTo(1);
        assertThat(run.out()).isEmpty();
        assertThat(run.err()).isEqualTo("qemu-img: " + image
                + ": creating vmdk images is not available yet in this version of jblock\n");
        assertThat(image).doesNotExist();
        QemuImgOracle.Run help = QemuImgOracle.jblock(args("create", "-f", "vmdk", "-o", "help"));
        assertThat(help.err()).isEqualTo("qemu-img: creating vmdk images is not available yet in this version of "
                + "jblock\n");
        assertThat(help.status()).isEqualTo(1);
    }

    @Test
    void objectsAreAcceptedOnTheCommandLineAndRefusedByName() {
        QemuImgOracle.Run run = QemuImgOracle.jblock(withImage("create", "--object", "secret,id=s0,data=x", "IMG",
                "1M"));
        assertThat(run.status()).isEqualTo(1);
        assertThat(run.err()).isEqualTo("qemu-img: --object is not available yet in this version of jblock "
                + "(given 'secret,id=s0,data=x')\n");
        assertThat(image).doesNotExist();
    }

    @Test
    void protocolsQemuHasAndJblockNotYetAreRefusedByName() {
        QemuImgOracle.Run run = QemuImgOracle.jblock(args("create", "nbd:localhost:10809", "1M"));
        assertThat(run.status()).isEqualTo(1);
        assertThat(run.err()).isEqualTo("qemu-img: nbd:localhost:10809: the 'nbd' protocol is not available yet "
                + "in this version of jblock\n");
    }

    @Test
    void sameOutputWithoutAFileForCommandsThatStopEarly() {
        assertSameAsQemu(args("create", "-f", "raw", "-o", "help"));
    }
}
